import { parseBudgetFlag, type BudgetLimit } from '../config/budgets.js';
import { parseShiftSets } from '../config/shifts.js';
import { CONFIG_INPUTS, readText, type Given } from '../config/sources.js';
import { UserError } from '../errors.js';
import type { BudgetName } from '../ledger/types.js';

export const MODES = ['check', 'nightly', 'aggregate'] as const;
export const COMMENT_MODES = ['auto', 'always', 'never'] as const;
export const FAIL_ON = ['fail', 'warn', 'never'] as const;

export interface Shard {
  /** 1-based index of this runner */
  index: number;
  count: number;
}

/**
 * The inputs that are not settings, with the defaults action.yml declares for them (an empty input is
 * unset). The settings' inputs are derived from the config's declaration (`CONFIG_INPUTS`).
 */
export const ACTION_ONLY_INPUTS = {
  models: '**/*.onnx',
  config: '',
  data: '',
  'calib-data': '',
  'shift-data': '',
  'onnxruntime-path': '',
  mode: 'check',
  shard: '',
  ledgers: '',
  out: 'prune-guard-out',
  comment: 'auto',
  'fail-on': 'fail',
  'history-file': 'prune-guard-history.json',
  'history-branch': '',
  'issue-label': 'prune-guard',
  'pull-request': '',
  'github-token': '${{ github.token }}',
} as const;

/** The action's inputs after validation. Names follow action.yml. */
export interface ActionInputs {
  models: string[];
  config?: string;
  /** settings given as inputs, each checked like the same setting in the config file */
  settings: Given[];
  data?: string;
  calibData?: string;
  shiftData: { name: string; path: string }[];
  onnxruntimePath?: string;
  mode: (typeof MODES)[number];
  shard?: Shard;
  budgets: ({ name: BudgetName } & BudgetLimit)[];
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
      return parseBudgetFlag(line, 'action input budgets');
    } catch (e) {
      throw new UserError((e as Error).message.replace(/^--budget /, 'input budgets: '));
    }
  });
  const settings = CONFIG_INPUTS.flatMap(({ input, ref }): Given[] => {
    const text = ref ? get(input) : '';
    if (!ref || text === '') return [];
    const read = readText(ref, text, `input ${input}`);
    if ('message' in read) throw new UserError(read.message);
    return [{ ref, value: read.value }];
  });
  const inputs: ActionInputs = {
    models: lines(get('models')).flatMap((l) => l.split(',').map((s) => s.trim()).filter(Boolean)),
    config: get('config') || undefined,
    settings,
    data: get('data') || undefined,
    calibData: get('calib-data') || undefined,
    shiftData: parseShiftSets(lines(get('shift-data')), (entry) => `input shift-data: '${entry}'`),
    onnxruntimePath: get('onnxruntime-path') || undefined,
    mode: oneOf('mode', get('mode'), MODES, ACTION_ONLY_INPUTS.mode),
    shard: parseShard(get('shard')),
    budgets,
    comment: oneOf('comment', get('comment'), COMMENT_MODES, ACTION_ONLY_INPUTS.comment),
    failOn: oneOf('fail-on', get('fail-on'), FAIL_ON, ACTION_ONLY_INPUTS['fail-on']),
    githubToken: get('github-token'),
    out: get('out') || ACTION_ONLY_INPUTS.out,
    ledgers: get('ledgers') || undefined,
    historyFile: get('history-file') || ACTION_ONLY_INPUTS['history-file'],
    historyBranch: get('history-branch') || undefined,
    issueLabel: get('issue-label') || ACTION_ONLY_INPUTS['issue-label'],
    pullRequest: number('pull-request', get('pull-request'), (n) => Number.isInteger(n) && n >= 1, 'a pull-request number like 42'),
  };
  if (inputs.models.length === 0) inputs.models = [ACTION_ONLY_INPUTS.models];
  if (inputs.mode === 'aggregate' && !inputs.ledgers) {
    throw new UserError('input ledgers: mode aggregate needs the folder holding the shards\' ledger.json files (download-artifact path)');
  }
  if (inputs.pullRequest !== undefined && inputs.mode !== 'aggregate') {
    throw new UserError('input pull-request: only used with mode: aggregate (posting ledgers from a workflow_run follow-up); remove it or set mode: aggregate');
  }
  return inputs;
}
