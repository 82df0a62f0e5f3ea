import * as fs from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { lineOf } from '../config/yamlPosition.js';
import { budgetPhrase, whyText } from '../ledger/budgetText.js';
import { budgetLine, notPassed, plain, whatToDo } from '../ledger/renderReview.js';
import type { BudgetResult, ModelLedger } from '../ledger/types.js';

export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: 'failure' | 'warning' | 'notice';
  title: string;
  message: string;
}

/** Where budget limits were set: the config file and the workflow file (for `budgets:` inputs). */
export interface BudgetSources {
  workspace: string;
  configFile?: string;
  workflowFile?: string;
}

function configLine(file: string, name: string): number {
  const lines = new LineCounter();
  const doc = parseDocument(fs.readFileSync(file, 'utf8'), { lineCounter: lines });
  return lineOf(doc, lines, ['budgets', name]);
}

function workflowLine(file: string, name: string): number | undefined {
  const index = fs.readFileSync(file, 'utf8').split('\n').findIndex((l) => l.includes(`${name}=`) || l.includes(`${name} =`));
  return index < 0 ? undefined : index + 1;
}

/** The file and line that set a budget's limit, when it lies in the repository. */
function locate(b: BudgetResult, src: BudgetSources): { path: string; line: number } | undefined {
  try {
    if (b.source === 'flag' && src.workflowFile && fs.existsSync(path.join(src.workspace, src.workflowFile))) {
      const line = workflowLine(path.join(src.workspace, src.workflowFile), b.name);
      if (line) return { path: src.workflowFile, line };
    }
    if (src.configFile && fs.existsSync(path.join(src.workspace, src.configFile))) {
      return { path: src.configFile, line: configLine(path.join(src.workspace, src.configFile), b.name) };
    }
  } catch {
    // an unreadable file only costs the annotation its position
  }
  return undefined;
}

/**
 * Failed and warned budgets of one model as check-run annotations at the lines that set their limits,
 * worded like the comment: the value against the limit, the margin, new or already on base, why, and
 * what to do.
 */
export function budgetAnnotations(model: ModelLedger, src: BudgetSources): Annotation[] {
  const out: Annotation[] = [];
  for (const j of notPassed([model])) {
    const b = j.budget;
    const at = locate(b, src);
    if (!at) continue;
    // a value not measured already says why in its line
    const why = b.actual === null ? '' : whyText(b, { closeCall: false });
    out.push({
      path: at.path,
      start_line: at.line,
      end_line: at.line,
      annotation_level: b.verdict === 'fail' ? 'failure' : 'warning',
      title: `${model.model}: ${budgetPhrase(b, j.compared)}`,
      message: plain(`${budgetLine(j, { icon: false })}.${why ? ` Why: ${why}.` : ''} ${whatToDo([j], 'action')}`),
    });
  }
  return out;
}
