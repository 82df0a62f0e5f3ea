import * as z from 'zod/mini';
import { must } from './issues.js';

/**
 * The kinds of value a setting can hold. A kind is everything each source needs to read one: the schema
 * of the value as the config file holds it (which also gives the JSON Schema), the phrase for "must be",
 * and how a flag's or action input's text becomes that value. src/config/schema.ts declares every
 * setting with one of these.
 */
export interface Kind<T> {
  schema: z.ZodMiniType<T>;
  /** what a valid value looks like in the file: "'key' must be <expect>" */
  expect: string;
  /** the same for a flag or input, when text is written differently ("1,32" against "[1, 32]") */
  textExpect?: string;
  /**
   * text -> the value as the file would hold it, for the schema to judge; text that is not even of the
   * right type is returned unchanged, so the message shows what was given
   */
  read: (text: string) => unknown;
  /** allowed values, listed by --help */
  choices?: readonly string[];
  /** a flag without a value that sets true */
  isSwitch?: true;
  /** a list whose flag is repeated, one item per flag: each flag's text is read as one item */
  item?: Kind<unknown>;
}

const NUMBER_TEXT = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i;
/** strict: '' or '0x10' are not numbers (Number() would read them as 0 and 16) */
const readNumber = (text: string): unknown => (NUMBER_TEXT.test(text) ? Number(text) : text);
const asIs = (text: string): unknown => text;

/** A number within `bounds` (z.minimum, z.lt, ...). */
export function number(expect: string, ...bounds: z.core.$ZodCheck<number>[]): Kind<number> {
  return { schema: z.number(must(expect)).check(...bounds), expect, read: readNumber };
}

/** A whole number from `min` (and up to `max` when given). */
export function wholeNumber(min: number, max?: number, phrase?: string): Kind<number> {
  const expect = phrase ?? (max === undefined ? `a whole number of ${min} or more` : `a whole number from ${min} to ${max}`);
  const bounds = max === undefined ? [z.minimum(min)] : [z.minimum(min), z.maximum(max)];
  return { schema: z.int(must(expect)).check(...bounds), expect, read: readNumber };
}

export function oneOf<const T extends readonly [string, ...string[]]>(values: T): Kind<T[number]> {
  const expect = `one of ${values.join(', ')}`;
  return { schema: z.enum(values, must(expect)), expect, read: asIs, choices: values };
}

export function text(expect: string, ...checks: z.core.$ZodCheck<string>[]): Kind<string> {
  return { schema: z.string(must(expect)).check(...checks), expect, read: asIs };
}

export function onOff(): Kind<boolean> {
  return { schema: z.boolean(must('true or false')), expect: 'true or false', read: (t) => (t === 'true' ? true : t === 'false' ? false : t), isSwitch: true };
}

const distinct = (list: readonly unknown[]): boolean => new Set(list).size === list.length;
/** no two items alike: checked, and said in the JSON Schema */
const unique = (expect: string) => [z.refine<unknown[]>(distinct, must(expect)), z.meta({ uniqueItems: true })];

/** A list written `[a, b]` in the file and `a,b` in a flag or input. */
export function commaList<T>(item: Kind<T>, expect: string, textExpect: string, opts: { nonEmpty?: boolean; unique?: boolean } = {}): Kind<T[]> {
  const checks = [...(opts.nonEmpty ? [z.minLength(1)] : []), ...(opts.unique ? unique(expect) : [])];
  return {
    schema: z.array(item.schema, must(expect)).check(...checks),
    expect,
    textExpect,
    read: (t) => t.split(',').map((s) => item.read(s.trim())),
  };
}

/** A list whose flag is repeated, one item each time (`--exclude a --exclude b`). */
export function repeatedList<T>(item: Kind<T>, expect: string, opts: { unique?: boolean } = {}): Kind<T[]> {
  return {
    schema: z.array(item.schema, must(expect)).check(...(opts.unique ? unique(expect) : [])),
    expect,
    textExpect: item.expect,
    read: item.read,
    item: item as Kind<unknown>,
  };
}
