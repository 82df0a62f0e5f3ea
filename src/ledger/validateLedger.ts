import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import schema from '../../schema/ledger.schema.json' with { type: 'json' };

let compiled: ValidateFunction | undefined;

function describeError(e: ErrorObject): string | undefined {
  const at = e.instancePath || '/';
  switch (e.keyword) {
    case 'if':
      return undefined; // the failing `then` branch is reported on its own
    case 'not':
      return `${at}: must not be "pass" when actual is null (an unmeasured budget never passes)`;
    case 'enum':
      return `${at}: ${e.message} (${(e.params.allowedValues as unknown[]).join(', ')})`;
    default:
      return `${at}: ${e.message}`;
  }
}

/** Errors of `obj` against `schema/ledger.schema.json`, as "<json pointer>: <problem>"; empty when valid. */
export function validateLedger(obj: unknown): string[] {
  compiled ??= new Ajv2020({ allErrors: true, allowUnionTypes: true }).compile(schema);
  if (compiled(obj)) return [];
  return (compiled.errors ?? []).map(describeError).filter((m): m is string => m !== undefined);
}
