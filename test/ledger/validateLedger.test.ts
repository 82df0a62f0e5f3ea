import { describe, expect, it } from 'vitest';
import schema from '../../schema/ledger.schema.json' with { type: 'json' };
import { BUDGET_NAMES } from '../../src/config/budgets.js';
import { validateLedger } from '../../src/ledger/validateLedger.js';
import { sampleLedger } from './fixtures.js';

describe('validateLedger', () => {
  it('accepts a hand-built ledger', () => {
    expect(validateLedger(sampleLedger())).toEqual([]);
  });

  it('accepts fields added later (the contract is extended over time)', () => {
    const ledger = { ...sampleLedger(), extra: { anything: 1 } };
    expect(validateLedger(ledger)).toEqual([]);
  });

  it('rejects a ledger missing its verdict', () => {
    const { verdict: _, ...ledger } = sampleLedger();
    expect(validateLedger(ledger)).toEqual(["/: must have required property 'verdict'"]);
  });

  it('rejects a wrong schema tag, a bad verdict and a missing step field', () => {
    const ledger = sampleLedger() as unknown as Record<string, any>;
    ledger.schema = 'prune-guard/ledger@2';
    ledger.models[0].verdict = 'ok';
    delete ledger.models[0].steps[1].latency;
    const errors = validateLedger(ledger);
    expect(errors).toContain('/schema: must be equal to constant');
    expect(errors).toContain('/models/0/verdict: must be equal to one of the allowed values (pass, warn, fail)');
    expect(errors).toContain("/models/0/steps/1: must have required property 'latency'");
  });

  it('rejects a budget that passes without a measurement', () => {
    const ledger = sampleLedger();
    ledger.models[0].budgets[4] = { ...ledger.models[0].budgets[4], verdict: 'pass' };
    expect(validateLedger(ledger)).toEqual([
      '/models/0/budgets/4/verdict: must not be "pass" when actual is null (an unmeasured budget never passes)',
    ]);
  });

  it('lists the same budget names as the BUDGETS table', () => {
    expect(schema.$defs.budget.properties.name.enum).toEqual(BUDGET_NAMES);
  });
});
