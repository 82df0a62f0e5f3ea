import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import { UserError, describe } from '../errors.js';
import { parseBudgetValue, type BudgetName } from './budgets.js';
import { DEFAULT_CONFIG, type Config, type LatencyConfig } from './schema.js';
import { findProblems, type ConfigProblem } from './validate.js';
import { lineOf } from './yamlPosition.js';

export { DEFAULT_CONFIG, type Config, type LatencyConfig } from './schema.js';

/** Reads and validates a `.prune-guard.yml`; every problem is a one-line UserError naming file and line. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${path}: config file not found; check the path or create it`);
    throw new UserError(`${path}: cannot read config file: ${describe(e)}`);
  }
  return parseConfig(text, path);
}

/** Parses config text; `where` (usually the file path) prefixes error messages. Empty text gives the defaults. */
export function parseConfig(text: string, where: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = syntax.linePos?.[0] ?? { line: 1, col: 1 };
    const reason = syntax.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError(`${where}:${pos.line}:${pos.col}: YAML syntax error: ${reason}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (e) {
    // e.g. a "billion laughs" alias bomb, which the yaml library refuses to expand
    throw new UserError(`${where}: YAML cannot be read (${describe(e)}); write the settings out without anchors and aliases`);
  }
  const problems = findProblems(raw);
  if (problems.length > 0) {
    // report the problem that comes first in the file
    const located = problems.map((p) => ({ ...p, line: lineOf(doc, lines, p.path) }));
    const first = located.reduce((a, b) => (b.line < a.line ? b : a));
    throw new UserError(`${where}:${first.line}: ${first.message}`);
  }
  return fromRaw(raw as Record<string, unknown>);
}

/** "2x" or 2 -> 2 (the schema has checked the form). */
export function parseSpeedup(value: number | string): number {
  return typeof value === 'number' ? value : Number(value.replace(/x$/, ''));
}

const camel = (key: string): string => key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A validated raw config -> Config over the defaults. */
function fromRaw(raw: Record<string, unknown>): Config {
  const config = structuredClone(DEFAULT_CONFIG) as Config;
  for (const [key, value] of Object.entries(raw)) {
    if (key === 'latency') config.latency = { ...config.latency, ...(camelKeys(value as Record<string, unknown>) as Partial<LatencyConfig>) };
    else if (key === 'budgets') config.budgets = budgetLimits(value as Record<BudgetName, number | string>);
    else if (key === 'target-speedup') config.targetSpeedup = parseSpeedup(value as number | string);
    else (config as unknown as Record<string, unknown>)[camel(key)] = value;
  }
  return config;
}

function budgetLimits(raw: Record<BudgetName, number | string>): Config['budgets'] {
  const limits: Config['budgets'] = {};
  for (const [name, value] of Object.entries(raw) as [BudgetName, number | string][]) {
    limits[name] = parseBudgetValue(name, value)!; // validated already
  }
  return limits;
}

const camelKeys = (o: Record<string, unknown>): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [camel(k), v]));
const kebabKeys = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o).map(([k, v]) => [kebab(k), v]));

function toRaw(config: Config): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config).map(([key, value]) => [kebab(key), key === 'latency' ? kebabKeys(value as object) : value]));
}

/** Overrides as the CLI collects them: any field, and any part of `latency`. */
export type ConfigOverrides = { [K in keyof Config]?: K extends 'latency' ? Partial<LatencyConfig> : Config[K] };

function defined<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * CLI flags over the file: set fields replace, `latency` and `budgets` merge key by key, undefined is ignored.
 * The result is validated again, so a bad flag value is a UserError naming the setting.
 */
export function mergeConfig(base: Config, overrides: ConfigOverrides): Config {
  const merged: Config = structuredClone({
    ...base,
    ...defined(overrides),
    latency: { ...base.latency, ...defined(overrides.latency) },
    budgets: { ...base.budgets, ...defined(overrides.budgets) },
  } as Config);
  const problem: ConfigProblem | undefined = findProblems(toRaw(merged))[0];
  if (problem) throw new UserError(`command-line flags: ${problem.message}`);
  return merged;
}
