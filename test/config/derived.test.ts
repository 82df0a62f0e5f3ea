import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { parse } from 'yaml';
import { ACTION_FILE, actionYmlText, configSchemaText, SCHEMA_FILE } from '../../scripts/config-artifacts.js';
import { buildProgram, resolveConfig, type InputFlags } from '../../src/cli.js';
import type { BudgetLimit, BudgetName, PerOutputBudget } from '../../src/config/budgets.js';
import { parseConfig } from '../../src/config/loadConfig.js';
import { configJsonSchema, DEFAULT_CONFIG, SETTINGS, type Config, type ExecutionProvider, type PruneMethod, type Scope } from '../../src/config/schema.js';
import { CONFIG_INPUTS, FLAGS, SETTING_REFS } from '../../src/config/sources.js';
import { findProblems } from '../../src/config/validate.js';
import { ACTION_ONLY_INPUTS } from '../../src/github/inputs.js';
import { tempDir } from '../support/fixtures.js';

/** The value at a Config field path. */
const at = (config: object, field: readonly string[]): unknown => field.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], config);

describe('the Config type, from the declaration', () => {
  it('has the field types the pipeline relies on', () => {
    // the type checks below are proven by tsc in npm test; at run time the declared fields must all exist
    const declared = new Set([...SETTING_REFS.map((r) => r.field[0]), 'budgets']);
    expect(Object.keys(DEFAULT_CONFIG).filter((k) => !declared.has(k))).toEqual([]);
    expectTypeOf<Config['sparsity']>().toEqualTypeOf<number>();
    expectTypeOf<Config['method']>().toEqualTypeOf<PruneMethod>();
    expectTypeOf<Config['scope']>().toEqualTypeOf<Scope>();
    expectTypeOf<Config['executionProvider']>().toEqualTypeOf<ExecutionProvider>();
    expectTypeOf<Config['batchSizes']>().toEqualTypeOf<number[]>();
    expectTypeOf<Config['latency']>().toEqualTypeOf<{ warmup: number; runs: number; threads: number; targetRelCi: number; maxSeconds: number; maxRuns: number; repeat: number }>();
    expectTypeOf<Config['timeBudget']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<Config['budgets']>().toEqualTypeOf<{ [N in BudgetName]?: (N extends PerOutputBudget ? BudgetLimit[] : BudgetLimit) | undefined }>();
    // every file key becomes a camelCase field, and nothing else is a field
    expectTypeOf<keyof Config>().toEqualTypeOf<
      | 'sparsity' | 'method' | 'task' | 'recovery' | 'scope' | 'exclude' | 'keepFirstLayer' | 'keepLastLayer' | 'bakeTemperature' | 'recoveryWork' | 'recoveryTimeBudget' | 'recoveryCommand'
      | 'batchSizes' | 'latency' | 'evalBatchSize' | 'confidence' | 'roundTo' | 'targetSpeedup' | 'targetLatencyMs' | 'criterion' | 'maxLayerSparsity' | 'strict' | 'executionProvider' | 'corruptions'
      | 'timeBudget' | 'schedule' | 'scheduleSteps' | 'schedulePatience' | 'recoveryRounds' | 'roundsCompareSensitivity' | 'quantize' | 'quantizeCalibration' | 'quantizeExclude' | 'output' | 'budgets'
    >();
  });
});

describe('defaults, from the declaration', () => {
  it('DEFAULT_CONFIG holds each setting\'s declared default, and an empty file gives it', () => {
    for (const ref of SETTING_REFS) expect(at(DEFAULT_CONFIG, ref.field), ref.path.join('.')).toEqual(ref.default);
    const declared = new Set([...SETTING_REFS.map((r) => r.field[0]), 'budgets']);
    expect(Object.keys(DEFAULT_CONFIG).filter((k) => !declared.has(k))).toEqual([]);
    expect(parseConfig('', 'x')).toEqual(DEFAULT_CONFIG);
  });
});

describe('JSON Schema, from the declaration', () => {
  const schema = configJsonSchema();

  it('schema/config.schema.json is the derived schema (npm run gen:config writes it)', () => {
    expect(fs.readFileSync(SCHEMA_FILE, 'utf8')).toBe(configSchemaText());
  });

  it('describes every key with its help and default', () => {
    expect(Object.keys(schema.properties)).toEqual(Object.keys(SETTINGS));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.sparsity).toMatchObject({ type: 'number', minimum: 0, exclusiveMaximum: 1, default: 0.5, description: SETTINGS.sparsity.help });
    expect(schema.properties['batch-sizes']).toMatchObject({ type: 'array', minItems: 1, uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 65536 } });
  });

  // an editor using the JSON Schema must never flag a file prune-guard accepts; the loader is stricter
  // only where JSON Schema cannot say it (N < M in N:M, a limit with a unit beyond its range)
  const validate = new Ajv2020({ allowUnionTypes: true, strict: false }).compile(schema);
  const samples: [string, unknown][] = [
    ['empty', {}],
    ['typical', { sparsity: 0.7, method: 'structured', scope: 'auto', latency: { runs: 50 }, budgets: { 'accuracy-drop': '0.5pt', 'max-size-bytes': '2MiB', 'min-speedup': '1.3x', 'p95-latency-ms': '5ms' } }],
    ['N:M', { method: '2:4' }],
    ['bare fraction', { budgets: { 'accuracy-drop': 0.05, 'latency-regression': 0.5 } }],
    ['bare points too large', { budgets: { 'accuracy-drop': 0.5 } }],
    ['sparsity 1', { sparsity: 1 }],
    ['unknown key', { sparcity: 0.5 }],
    ['unknown latency key', { latency: { runz: 3 } }],
    ['duplicate batch sizes', { 'batch-sizes': [1, 1] }],
    ['batch size too large', { 'batch-sizes': [100000] }],
    ['bad unit', { budgets: { 'max-size-bytes': '2XB' } }],
    ['pt on a ratio', { budgets: { 'min-speedup': '2pt' } }],
    ['corruption', { corruptions: ['blur:1', 'contrast:6'] }],
    ['empty glob', { exclude: [''] }],
    ['time budget', { 'time-budget': 0 }],
  ];
  it.each(samples)('%s: the JSON Schema and the loader agree', (_, raw) => {
    expect(validate(raw), JSON.stringify(validate.errors)).toBe(findProblems(raw).length === 0);
  });

  it('the loader is stricter only where JSON Schema cannot follow', () => {
    for (const raw of [{ method: '4:2' }, { budgets: { 'accuracy-drop': '150pt' } }]) {
      expect(validate(raw)).toBe(true);
      expect(findProblems(raw)).toHaveLength(1);
    }
  });
});

describe('CLI flags, from the declaration', () => {
  const program = buildProgram({ out: () => undefined, exit: () => undefined });
  const command = (name: string) => program.commands.find((c) => c.name() === name)!;
  const INPUT_FLAGS = ['--model', '--data', '--out', '--calib', '--shift', '--config', '--budget', '--quiet', '--base', '--head', '--repetitions'];
  const STATISTICS = ['--strict', '--execution-provider', '--confidence', '--target-rel-ci', '--max-seconds', '--max-runs', '--corruption', '--repeat'];
  const MEASURE = ['--config', '--budget', '--batch-sizes', '--warmup', '--runs', '--threads', '--eval-batch-size', '--quiet'];
  /** every flag each command has always had: none lost, none renamed */
  const COMMANDS: Record<string, string[]> = {
    run: [
      ...['--model', '--data', '--out', '--calib', '--shift', '--config', '--budget', '--sparsity', '--method', '--task', '--recovery', '--scope', '--round-to', '--target-speedup', '--target-latency-ms', '--criterion', '--max-layer-sparsity'],
      ...['--exclude', '--keep-first-layer', '--keep-last-layer', '--recovery-command', '--recovery-work', '--recovery-time-budget', '--bake-temperature', '--batch-sizes', '--warmup', '--runs', '--threads'],
      ...['--eval-batch-size', '--time-budget', '--schedule', '--schedule-steps', '--schedule-patience', '--recovery-rounds', '--rounds-compare-sensitivity', '--quiet', ...STATISTICS],
      ...['--quantize', '--quantize-calibration', '--quantize-exclude', '--output'],
    ],
    compare: ['--base', '--head', '--data', '--out', '--shift', '--output', ...MEASURE, ...STATISTICS],
    selftest: ['--model', '--data', '--repetitions', '--out', ...MEASURE, ...STATISTICS],
  };

  it.each(Object.keys(COMMANDS))('%s keeps every flag name, and each setting flag is generated from its setting', (name) => {
    const cmd = command(name);
    expect(cmd.options.map((o) => o.long).sort()).toEqual([...COMMANDS[name]].sort());
    for (const option of cmd.options) {
      if (INPUT_FLAGS.includes(option.long!)) continue;
      const spec = FLAGS.find((f) => f.flag === option.long && f.commands.includes(name as 'run'));
      expect(spec, option.long).toBeDefined();
      expect(option.description.startsWith(spec!.ref.help), option.long).toBe(true);
      expect(option.argChoices).toEqual(spec!.ref.kind.choices);
      expect(option.required || option.optional).toBe(!spec!.ref.kind.isSwitch);
    }
  });

  it('every setting has a flag on run, and shows its default in --help', () => {
    for (const ref of SETTING_REFS) expect(FLAGS.some((f) => f.ref === ref && f.commands.includes('run')), ref.path.join('.')).toBe(true);
    expect(FLAGS.find((f) => f.flag === '--sparsity')!.help).toMatch(/\(default: 0\.5\)$/);
    expect(FLAGS.find((f) => f.flag === '--batch-sizes')!.help).toMatch(/\(default: 1,32\)$/);
  });

  const CONFIG_FILE = path.join(tempDir(), 'pg.yml');
  fs.writeFileSync(CONFIG_FILE, 'exclude: ["*.bias"]\ncorruptions: [gaussian-noise:2]\nlatency: { warmup: 2 }\nbudgets:\n  accuracy-drop: 0.5pt\n');

  /** What the run command's options give, through commander and the config resolution, in process. */
  async function runFlags(args: string[]): Promise<ReturnType<typeof resolveConfig>> {
    const p = buildProgram({ out: () => undefined, exit: () => undefined });
    let resolved: ReturnType<typeof resolveConfig> | undefined;
    p.commands.find((c) => c.name() === 'run')!.action((flags: InputFlags) => {
      resolved = resolveConfig(flags, 'run');
    });
    await p.parseAsync(['run', '--model', 'm.onnx', '--data', 'd.npz', '--out', 'o', '--config', CONFIG_FILE, ...args], { from: 'user' });
    return resolved!;
  }

  it('parses each kind of flag into the config, over the file', async () => {
    const { config, budgets } = await runFlags([
      ...['--sparsity', '0.7', '--method', '2:4', '--scope', 'layer', '--batch-sizes', '8,1', '--runs', '5', '--threads', '1'],
      ...['--exclude', 'head/*', '--corruption', 'blur:1', '--corruption', 'blur:1', '--keep-first-layer', '--strict', '--budget', 'max-size-bytes=2MiB'],
    ]);
    expect(config).toMatchObject({ sparsity: 0.7, method: '2:4', scope: 'layer', batchSizes: [8, 1], keepFirstLayer: true, strict: true });
    expect(config.latency).toEqual({ ...DEFAULT_CONFIG.latency, warmup: 2, runs: 5, threads: 1 });
    // a repeated flag adds to the file's list (exclude) or set (corruptions)
    expect(config.exclude).toEqual(['*.bias', 'head/*']);
    expect(config.corruptions).toEqual(['gaussian-noise:2', 'blur:1']);
    expect(budgets.find((b) => b.name === 'max-size-bytes')).toMatchObject({ limit: 2 ** 21, written: '2MiB', set_at: '--budget', source: 'flag' });
    expect(budgets.find((b) => b.name === 'accuracy-drop')).toMatchObject({ limit: 0.005, written: '0.5pt', source: 'config' });
    expect(budgets.find((b) => b.name === 'accuracy-drop')!.set_at).toBe(`${CONFIG_FILE}:5`);
  });
});

describe('action inputs, from the declaration', () => {
  const action = parse(fs.readFileSync(ACTION_FILE, 'utf8')) as { inputs: Record<string, { description: string; default: string }> };

  it('every config-backed input is in action.yml with the description derived from its setting, and defaults to the config file', () => {
    for (const { input, description } of CONFIG_INPUTS) {
      expect(action.inputs[input], input).toBeDefined();
      expect(action.inputs[input].description, input).toBe(description);
      expect(action.inputs[input].default, input).toBe('');
    }
  });

  it('action.yml has no input that is neither a setting nor an action-only input, and their defaults agree', () => {
    const known = [...CONFIG_INPUTS.map((c) => c.input), ...Object.keys(ACTION_ONLY_INPUTS)];
    expect(Object.keys(action.inputs).sort()).toEqual(known.sort());
    for (const [input, value] of Object.entries(ACTION_ONLY_INPUTS)) expect(action.inputs[input].default, input).toBe(value);
  });

  it('each config-backed input names a setting of the declaration (or budgets), once', () => {
    const inputs = CONFIG_INPUTS.map((c) => c.input);
    expect(new Set(inputs).size).toBe(inputs.length);
    expect(CONFIG_INPUTS.filter((c) => !c.ref).map((c) => c.input)).toEqual(['budgets']);
    expect(Object.fromEntries(CONFIG_INPUTS.filter((c) => c.ref).map((c) => [c.input, c.ref!.path.join('.')]))).toEqual({
      'target-sparsity': 'sparsity',
      method: 'method',
      task: 'task',
      recovery: 'recovery',
      'recovery-command': 'recovery-command',
      'batch-sizes': 'batch-sizes',
      warmup: 'latency.warmup',
      runs: 'latency.runs',
      'execution-provider': 'execution-provider',
      quantize: 'quantize',
    });
  });

  it('action.yml is what npm run gen:config writes', () => {
    const text = fs.readFileSync(ACTION_FILE, 'utf8');
    expect(actionYmlText(text)).toBe(text);
  });
});
