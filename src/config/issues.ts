/**
 * How a setting's schema phrases what is wrong, so every source (config file, flag, action input) says it
 * the same way: an issue's message is the phrase after "must be" (`expect`), unless its `form` says the
 * message is already a sentence.
 */

/** `said`: "'method' N:M must have ..." (the message follows the key); `plain`: "budgets.x: 0.5 would mean ..." */
export type IssueForm = 'said' | 'plain';

/** zod's per-schema error option: every issue the schema raises (type and checks) reads `expect`. */
export function must(expect: string): { error: () => string } {
  return { error: () => expect };
}

/** A custom issue whose message is a sentence of its own rather than a "must be" phrase. */
export function sentence(form: IssueForm, message: string, input: unknown): { code: 'custom'; message: string; params: { form: IssueForm }; input: unknown } {
  return { code: 'custom', message, params: { form }, input };
}

/** The form of an issue from its params (absent: a "must be" phrase). */
export function formOf(issue: { code: string; params?: Record<string, unknown> }): IssueForm | undefined {
  const form = issue.code === 'custom' ? issue.params?.form : undefined;
  return form === 'said' || form === 'plain' ? form : undefined;
}

/** The bound a number broke, as ajv and the docs write it: "must be < 1". */
export function boundOf(issue: { code: string; origin?: string; minimum?: unknown; maximum?: unknown; inclusive?: boolean }): string | undefined {
  if (issue.origin !== 'number' && issue.origin !== 'int') return undefined;
  if (issue.code === 'too_small') return `must be ${issue.inclusive ? '>=' : '>'} ${String(issue.minimum)}`;
  if (issue.code === 'too_big') return `must be ${issue.inclusive ? '<=' : '<'} ${String(issue.maximum)}`;
  return undefined;
}
