import { overallVerdict } from './budgets.js';
import { LEDGER_SCHEMA, type Ledger, type ModelLedger, type TimedOut, type Verdict } from './types.js';
import { VERSION } from '../version.js';

export type LedgerRuntime = Ledger['runtime'];

/**
 * The ledger around the models' records, the same for every writer (run, compare, a timed-out run, the
 * action's merge): the worst model's verdict, `fail` when any run stopped at its time budget.
 */
export function ledgerEnvelope(models: ModelLedger[], runtime: LedgerRuntime, timedOut: readonly TimedOut[] = []): Ledger {
  const verdicts: Verdict[] = [...models.map((m) => m.verdict), ...timedOut.map((): Verdict => 'fail')];
  return {
    schema: LEDGER_SCHEMA,
    verdict: overallVerdict(verdicts),
    tool: { name: 'prune-guard', version: VERSION },
    created_at: new Date().toISOString(),
    runtime,
    models,
    ...(timedOut.length > 0 ? { timed_out: timedOut[0] } : {}),
    ...(timedOut.length > 1 ? { more_timed_out: timedOut.slice(1) } : {}),
  };
}

/** Every run a ledger says stopped at its time budget, the first one first. */
export function timedOutRuns(ledger: Pick<Ledger, 'timed_out' | 'more_timed_out'>): TimedOut[] {
  return ledger.timed_out ? [ledger.timed_out, ...(ledger.more_timed_out ?? [])] : [];
}
