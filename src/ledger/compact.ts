/**
 * A ledger of a model with many classes stays small: per-class arrays and the confusion matrix grow with
 * the classes (a 1000-class confusion matrix is a million counts per step), so past FULL_CLASSES the
 * classes that changed most are written in full and the rest as a summary. Budgets are judged on the full
 * numbers before this; only the written ledger is compacted.
 */
import type { ClassChange, ClassDigest, ClassSummary, Ledger, ModelLedger, Step } from './types.js';

/** Up to this many classes, every per-class number is written. */
export const FULL_CLASSES = 100;
/** Past it, this many classes (the largest drops first, and any beyond the class budget) are written in full. */
export const SHOWN_CLASSES = 20;

function summary(step: Step, classes: readonly number[]): ClassSummary {
  const acc = classes.map((c) => step.per_class?.[c] ?? null).filter((a): a is number => a !== null);
  const out: ClassSummary = {
    classes: classes.length,
    with_samples: acc.length,
    mean_accuracy: acc.length ? acc.reduce((a, b) => a + b, 0) / acc.length : null,
    min_accuracy: acc.length ? Math.min(...acc) : null,
  };
  if (step.confusion) {
    let samples = 0;
    let correct = 0;
    for (const c of classes) {
      const row = step.confusion[c] ?? [];
      for (const n of row) samples += n;
      correct += row[c] ?? 0;
    }
    Object.assign(out, { samples, correct });
  }
  return out;
}

function digestStep(step: Step, shown: readonly number[]): Step {
  const classes = step.per_class?.length ?? 0;
  if (classes <= FULL_CLASSES) return step;
  const set = new Set(shown);
  const rest = Array.from({ length: classes }, (_, c) => c).filter((c) => !set.has(c));
  const digest: ClassDigest = {
    classes,
    shown: [...shown],
    accuracy: shown.map((c) => step.per_class![c] ?? null),
    ...(step.per_class_ci ? { accuracy_ci: shown.map((c) => step.per_class_ci![c] ?? null) } : {}),
    ...(step.confusion ? { confusion: shown.map((c) => (step.confusion![c] ?? []).flatMap((n, p): [number, number][] => (n > 0 ? [[p, n]] : []))) } : {}),
    rest: summary(step, rest),
  };
  const { per_class_ci: _ci, confusion: _confusion, ...kept } = step;
  return { ...kept, per_class: null, class_digest: digest };
}

/** The classes written in full: the largest drops first, plus every class whose drop is beyond the budget. */
export function shownClasses(changes: readonly ClassChange[], limit = SHOWN_CLASSES): number[] {
  const shown = changes.slice(0, limit).map((c) => c.class);
  for (const c of changes.slice(limit)) if (c.beyond_budget) shown.push(c.class);
  return shown;
}

function compactModel(model: ModelLedger): ModelLedger {
  const classes = Math.max(model.eval.classes, ...model.steps.map((s) => s.per_class?.length ?? 0));
  if (classes <= FULL_CLASSES) return model;
  const shown = shownClasses(model.class_changes);
  const listed = new Set(shown);
  const rest = model.class_changes.filter((c) => !listed.has(c.class));
  const out: ModelLedger = {
    ...model,
    steps: model.steps.map((s) => digestStep(s, shown)),
    class_changes: model.class_changes.filter((c) => listed.has(c.class)),
    class_changes_rest: {
      classes: rest.length,
      lost: rest.filter((c) => c.drop > 0).length,
      gained: rest.filter((c) => c.drop < 0).length,
      largest_drop: rest.length ? Math.max(...rest.map((c) => c.drop)) : null,
    },
  };
  if (model.vs_base) {
    out.vs_base = { ...model.vs_base, steps: model.vs_base.steps.map((s) => digestStep(s, shown)), ...(model.vs_base.pair ? { pair: model.vs_base.pair.map((s) => digestStep(s, shown)) as [Step, Step] } : {}) };
  }
  return out;
}

/** The ledger as written to ledger.json: models with many classes compacted, everything else as is. */
export function compactLedger(ledger: Ledger): Ledger {
  return { ...ledger, models: ledger.models.map(compactModel) };
}

/** ledger.json's text. */
export function ledgerJson(ledger: Ledger): string {
  return JSON.stringify(compactLedger(ledger), null, 2) + '\n';
}
