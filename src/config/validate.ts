import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { BUDGETS, isBudgetName, parseBudgetValue } from './budgets.js';
import { CONFIG_SCHEMA, PRUNE_METHODS, schemaAt } from './schema.js';
import { suggestionTail } from './suggest.js';

export type KeyPath = (string | number)[];

/** One thing wrong with a raw (kebab-case, as written) config; `message` has no location prefix. */
export interface ConfigProblem {
  path: KeyPath;
  message: string;
}

let compiled: ValidateFunction | undefined;
function validator(): ValidateFunction {
  compiled ??= new Ajv2020({ allErrors: true, allowUnionTypes: true }).compile(CONFIG_SCHEMA);
  return compiled;
}

/** `budgets.accuracy-drop`, `batch-sizes[1]` */
export function formatKeyPath(path: readonly (string | number)[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
}

function show(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

/** JSON pointer of an ajv error -> key path, numbering array indexes. */
function toKeyPath(pointer: string, raw: unknown): { path: KeyPath; value: unknown } {
  const path: KeyPath = [];
  let value = raw;
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value)) {
      path.push(Number(key));
      value = value[Number(key)];
    } else {
      path.push(key);
      value = (value as Record<string, unknown> | undefined)?.[key];
    }
  }
  return { path, value };
}

const BOUNDS = new Set(['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum']);

function fromAjv(error: ErrorObject, raw: unknown): ConfigProblem {
  const { path, value } = toKeyPath(error.instancePath, raw);
  if (error.keyword === 'additionalProperties') {
    const key = String(error.params.additionalProperty);
    const valid = Object.keys(schemaAt(path)?.properties ?? {});
    const full = [...path, key];
    return { path: full, message: `unknown key '${formatKeyPath(full)}'${suggestionTail(key, valid)}` };
  }
  const expected = schemaAt(path)?.description ?? 'valid';
  const bound = BOUNDS.has(error.keyword) ? `; ${error.message}` : '';
  if (path.length === 0) return { path, message: `the config must be ${expected} (got ${show(value)})` };
  return { path, message: `'${formatKeyPath(path)}' must be ${expected} (got ${show(value)}${bound})` };
}

/** Checks the schema cannot express: N < M in "N:M", and budget limits with units. */
function semanticProblems(raw: Record<string, unknown>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const method = raw.method;
  if (typeof method === 'string' && !(PRUNE_METHODS as readonly string[]).includes(method)) {
    const [n, m] = method.split(':').map(Number);
    if (n >= m) {
      problems.push({ path: ['method'], message: `'method' N:M must have N smaller than M, like "2:4" (got ${show(method)})` });
    }
  }
  const budgets = raw.budgets;
  if (budgets && typeof budgets === 'object' && !Array.isArray(budgets)) {
    for (const [name, value] of Object.entries(budgets)) {
      if (!isBudgetName(name) || (typeof value !== 'number' && typeof value !== 'string')) continue;
      if (parseBudgetValue(name, value) === null) {
        const path = ['budgets', name];
        problems.push({ path, message: `'${formatKeyPath(path)}' must be ${BUDGETS[name].expect} (got ${show(value)})` });
      }
    }
  }
  return problems;
}

/** Every problem in a raw config, in schema order; empty when it is valid. */
export function findProblems(raw: unknown): ConfigProblem[] {
  const validate = validator();
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  if (!validate(raw)) {
    for (const error of validate.errors ?? []) {
      const problem = fromAjv(error, raw);
      const key = JSON.stringify(problem.path);
      // anyOf reports each branch at the same path; one message per key is enough
      if (seen.has(key)) continue;
      seen.add(key);
      problems.push(problem);
    }
  }
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    problems.push(...semanticProblems(raw as Record<string, unknown>).filter((p) => !seen.has(JSON.stringify(p.path))));
  }
  return problems;
}
