import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../config/schema.js';
import { UserError } from '../errors.js';
import { parseBudgetFlag } from '../config/budgets.js';
import type { BudgetName } from '../ledger/types.js';

export const MODES = ['check', 'nightly', 'aggregate'] as const;
export const COMMENT_MODES = ['auto', 'always', 'never'] as const;
export const FAIL_ON = ['fail', 'warn', 'never'] as const;

export interface Shard {
  /** 1-based index of this runner */
  index: number;
  count: number;
}

/** The action's inputs after validation. Names follow action.yml. */
export interface ActionInputs {
  models: string[];
  config?: string;
  targetSparsity?: number;
  method?: string;
  recovery?: string;
  recoveryCommand?: string;
  data?: string;
  calibData?: string;
  shiftData: { name: string; path: string }[];
  executionProvider: ExecutionProvider;
  onnxruntimePath?: string;
  mode: (typeof MODES)[number];
  shard?: Shard;
  budgets: { name: BudgetName; limit: number }[];
  comment: (typeof COMMENT_MODES)[number];
  failOn: (typeof FAIL_ON)[number];
  githubToken: string;
  out: string;
  ledgers?: string;
  historyFile: string;
  historyBranch?: string;
  issueLabel: string;
  /** comment on this pull request from a non-pull-request event (a `workflow_run` follow-up) */
  pullRequest?: number;
  batchSizes?: number[];
  runs?: number;
  warmup?: number;
}

/** Non-empty, trimmed lines of a multi-line input; `#` starts a comment line. */
export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function oneOf<T extends string>(input: string, value: string, allowed: readonly T[], fallback: T): T {
  if (value === '') return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UserError(`input ${input}: '${value}' is not one of ${allowed.join(', ')}; set it to one of them or leave it out`);
}

/** `i/n` with 1 <= i <= n */
export function parseShard(text: string): Shard | undefined {
  if (text === '') return undefined;
  const m = /^(\d+)\s*\/\s*(\d+)$/.exec(text);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new UserError(`input shard: '${text}' must be i/n with 1 <= i <= n, e.g. shard: \${{ matrix.shard }}/4`);
  }
  return { index, count };
}

function parseNamedPaths(input: string, text: string): { name: string; path: string }[] {
  return lines(text).map((l) => {
    const eq = l.indexOf('=');
    if (eq <= 0 || eq === l.length - 1) throw new UserError(`input ${input}: '${l}' must be NAME=path, e.g. rotated=data/rotated.npz`);
    return { name: l.slice(0, eq).trim(), path: l.slice(eq + 1).trim() };
  });
}

function number(input: string, text: string, ok: (n: number) => boolean, expect: string): number | undefined {
  if (text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || !ok(n)) throw new UserError(`input ${input}: '${text}' must be ${expect}`);
  return n;
}

/**
 * Reads every input through `get` (core.getInput in the action: trimmed, '' when unset) and validates
 * it; a bad value is a one-line UserError naming the input.
 */
export function readInputs(get: (name: string) => string): ActionInputs {
  const budgets = lines(get('budgets')).map((line) => {
    try {
      return parseBudgetFlag(line);
    } catch (e) {
      throw new UserError((e as Error).message.replace(/^--budget /, 'input budgets: '));
    }
  });
  const batchText = get('batch-sizes');
  const batchSizes = batchText === '' ? undefined : batchText.split(',').map((s) => Number(s.trim()));
  if (batchSizes?.some((b) => !Number.isInteger(b) || b < 1)) {
    throw new UserError(`input batch-sizes: '${batchText}' must be positive integers separated by commas, e.g. 1,32`);
  }
  const executionProvider = oneOf('execution-provider', get('execution-provider'), EXECUTION_PROVIDERS, 'cpu');
  const inputs: ActionInputs = {
    models: lines(get('models')).flatMap((l) => l.split(',').map((s) => s.trim()).filter(Boolean)),
    config: get('config') || undefined,
    targetSparsity: number('target-sparsity', get('target-sparsity'), (n) => n >= 0 && n < 1, 'a fraction from 0 to below 1, e.g. 0.5'),
    method: get('method') || undefined,
    recovery: get('recovery') || undefined,
    recoveryCommand: get('recovery-command') || undefined,
    data: get('data') || undefined,
    calibData: get('calib-data') || undefined,
    shiftData: parseNamedPaths('shift-data', get('shift-data')),
    executionProvider,
    onnxruntimePath: get('onnxruntime-path') || undefined,
    mode: oneOf('mode', get('mode'), MODES, 'check'),
    shard: parseShard(get('shard')),
    budgets,
    comment: oneOf('comment', get('comment'), COMMENT_MODES, 'auto'),
    failOn: oneOf('fail-on', get('fail-on'), FAIL_ON, 'fail'),
    githubToken: get('github-token'),
    out: get('out') || 'prune-guard-out',
    ledgers: get('ledgers') || undefined,
    historyFile: get('history-file') || 'prune-guard-history.json',
    historyBranch: get('history-branch') || undefined,
    issueLabel: get('issue-label') || 'prune-guard',
    pullRequest: number('pull-request', get('pull-request'), (n) => Number.isInteger(n) && n >= 1, 'a pull-request number like 42'),
    batchSizes,
    runs: number('runs', get('runs'), (n) => Number.isInteger(n) && n >= 1, 'a whole number of 1 or more'),
    warmup: number('warmup', get('warmup'), (n) => Number.isInteger(n) && n >= 0, 'a whole number of 0 or more'),
  };
  if (inputs.models.length === 0) inputs.models = ['**/*.onnx'];
  if (inputs.mode === 'aggregate' && !inputs.ledgers) {
    throw new UserError('input ledgers: mode aggregate needs the folder holding the shards\' ledger.json files (download-artifact path)');
  }
  if (inputs.pullRequest !== undefined && inputs.mode !== 'aggregate') {
    throw new UserError('input pull-request: only used with mode: aggregate (posting ledgers from a workflow_run follow-up); remove it or set mode: aggregate');
  }
  return inputs;
}
