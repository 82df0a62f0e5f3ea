import { UserError } from '../errors.js';
import { formOf } from './issues.js';
import type { Kind } from './kinds.js';
import { SETTINGS, camel, toFile, type Command, type Config, type FlagOptions, type Setting, type SettingGroup } from './schema.js';
import { describeIssue, findProblems } from './validate.js';

/**
 * The CLI's flags and the action's inputs, derived from `SETTINGS`: which flag or input sets which
 * setting, how its text is read and checked, and how given values go over the config file.
 */

/** One setting of the declaration, flattened out of its block (`latency.runs`). */
export interface SettingRef {
  /** as written in the file: ['latency', 'runs'] */
  path: readonly string[];
  /** as the Config names it: ['latency', 'runs'], ['batchSizes'] */
  field: readonly string[];
  kind: Kind<unknown>;
  help: string;
  default?: unknown;
  flag?: FlagOptions;
  input?: string;
}

function flatten(settings: Record<string, Setting | SettingGroup | object>, prefix: readonly string[]): SettingRef[] {
  return Object.entries(settings).flatMap(([key, s]): SettingRef[] => {
    const path = [...prefix, key];
    if ('settings' in s) return flatten(s.settings, path);
    if (!('kind' in s)) return []; // budgets: NAME=VALUE lines, read by parseBudgetFlag
    return [{ path, field: path.map(camel), kind: s.kind, help: s.help, default: s.default, flag: s.flag, input: s.input }];
  });
}

/** Every setting that holds one value (all but `budgets`), in declaration order. */
export const SETTING_REFS: readonly SettingRef[] = flatten(SETTINGS, []);

/** A default as a flag or input would write it; undefined when there is nothing to show (off, empty). */
export function defaultText(ref: { default?: unknown }): string | undefined {
  const d = ref.default;
  if (d === undefined || d === false || d === '' || (Array.isArray(d) && d.length === 0)) return undefined;
  return Array.isArray(d) ? d.join(',') : String(d);
}

export interface FlagSpec {
  /** `--sparsity` */
  flag: string;
  /** `--sparsity <fraction>`, or the bare flag of a switch */
  syntax: string;
  help: string;
  choices?: readonly string[];
  commands: readonly Command[];
  ref: SettingRef;
}

/** The flags of every setting that has one. */
export const FLAGS: readonly FlagSpec[] = SETTING_REFS.filter((r) => r.flag).map((ref) => {
  const f = ref.flag!;
  const flag = f.name ?? `--${ref.path.at(-1)}`;
  const shown = defaultText(ref);
  return {
    flag,
    syntax: ref.kind.isSwitch ? flag : `${flag} ${f.value ?? '<value>'}`,
    help: `${ref.help}${ref.kind.item ? '; repeatable' : ''}${shown === undefined ? '' : ` (default: ${shown})`}`,
    ...(ref.kind.choices ? { choices: ref.kind.choices } : {}),
    commands: f.commands,
    ref,
  };
});

/** `--budget`: the help and commands of the budgets' flag, which takes NAME=VALUE (src/config/budgets.ts). */
export const BUDGET_FLAG = {
  syntax: `${SETTINGS.budgets.flag.name} ${SETTINGS.budgets.flag.value}`,
  help: `${SETTINGS.budgets.help}; repeatable, over the config file`,
  commands: SETTINGS.budgets.flag.commands,
};

/** The action inputs that set a setting, `budgets` included: input name -> setting and description. */
export const CONFIG_INPUTS: readonly { input: string; ref?: SettingRef; description: string }[] = [
  ...SETTING_REFS.filter((r) => r.input).map((ref) => ({ input: ref.input!, ref, description: inputDescription(ref) })),
  { input: SETTINGS.budgets.input, description: inputDescription({ help: SETTINGS.budgets.help }) },
];

/** action.yml's description of a config-backed input: the setting's help, and that it overrides the file. */
function inputDescription(ref: { help: string; default?: unknown }): string {
  const shown = defaultText(ref);
  const help = ref.help.charAt(0).toUpperCase() + ref.help.slice(1);
  return `${help}. Overrides the config file${shown === undefined ? '' : ` (default ${shown})`}.`;
}

/** A setting's value given by a flag or an input, already checked. */
export interface Given {
  ref: SettingRef;
  value: unknown;
}

/**
 * Reads the text of a flag or input (`subject` names it in messages: `--sparsity`, `input runs`) with
 * the setting's own schema, so it is refused exactly as the same value in the file would be.
 * A repeated list's flag gives one item.
 */
export function readText(ref: SettingRef, text: string, subject: string): { value: unknown } | { message: string } {
  const kind = ref.kind.item ?? ref.kind;
  if (text.trim() === '') return { message: `${subject} is empty (an unset variable?); give a value or leave it out` };
  const result = kind.schema.safeParse(kind.read(text));
  if (result.success) return { value: result.data };
  const issue = result.error.issues[0];
  // a list is written differently as text (1,32) than in the file ([1, 32]), so its text says how
  const asText = ref.kind.textExpect && !ref.kind.item && formOf(issue) === undefined ? { ...issue, message: ref.kind.textExpect } : issue;
  return { message: describeIssue(asText, subject, `'${text}'`) };
}

/**
 * Given values over a config: each replaces the setting, but a repeated list's flags add to the file's
 * list (`append`) or set (`union`). The result is checked as a whole; `where` names the source.
 */
export function applyGiven(base: Config, given: readonly Given[], where: string): Config {
  const config = structuredClone(base) as unknown as Record<string, unknown>;
  for (const { ref, value } of given) {
    const parent = ref.field.slice(0, -1).reduce((o, k) => o[k] as Record<string, unknown>, config);
    const key = ref.field.at(-1)!;
    const repeat = ref.flag?.repeat;
    if (repeat === 'append') parent[key] = [...(parent[key] as unknown[]), value];
    else if (repeat === 'union') parent[key] = [...new Set([...(parent[key] as unknown[]), value])];
    else parent[key] = value;
  }
  const problem = findProblems(toFile(config as unknown as Config))[0];
  if (problem) throw new UserError(`${where}: ${problem.message}`);
  return config as unknown as Config;
}
