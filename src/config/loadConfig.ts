import { readInputFile } from '../io/inputFile.js';
import { isScalar, LineCounter, parseDocument } from 'yaml';
import { UserError, describe } from '../errors.js';
import { CONFIG_FILE, fromFile, type Config } from './schema.js';
import { findProblems } from './validate.js';
import { lineOf } from './yamlPosition.js';

export { DEFAULT_CONFIG, type Config, type LatencyConfig } from './schema.js';

/** A config file is a page of YAML; anything near this size is not one. */
const MAX_CONFIG_BYTES = 4 * 2 ** 20;

/**
 * Reads and validates a `.prune-guard.yml`; every problem is a one-line UserError naming file and line.
 * `shownAs` is how messages and the ledger name the file (the action shows it relative to the workspace).
 */
export function loadConfig(path: string, shownAs = path): Config {
  const text = readInputFile(path, { shownAs, expected: 'a .prune-guard.yml config file', maxBytes: MAX_CONFIG_BYTES }).toString('utf8');
  return parseConfig(text, shownAs);
}

/**
 * Parses config text; `where` (usually the file path) prefixes error messages and records where each
 * budget limit was set (`where:LINE`). Empty text gives the defaults.
 */
export function parseConfig(text: string, where: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const pos = syntax.linePos?.[0] ?? { line: 1, col: 1 };
    const reason = syntax.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new UserError(`${where}:${pos.line}:${pos.col}: YAML syntax error: ${reason}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS() ?? {};
  } catch (e) {
    // e.g. a "billion laughs" alias bomb, which the yaml library refuses to expand
    throw new UserError(`${where}: YAML cannot be read (${describe(e)}); write the settings out without anchors and aliases`);
  }
  const problems = findProblems(raw);
  if (problems.length > 0) {
    // report the problem that comes first in the file
    const located = problems.map((p) => ({ ...p, line: lineOf(doc, lines, p.path) }));
    const first = located.reduce((a, b) => (b.line < a.line ? b : a));
    throw new UserError(`${where}:${first.line}: ${first.message}`);
  }
  const config = fromFile(CONFIG_FILE.parse(raw));
  for (const [name, limit] of Object.entries(config.budgets)) {
    const path = ['budgets', name];
    const node = doc.getIn(path, true);
    // a bare number is kept as written (0.010, 1e-2), not as JavaScript prints it back
    if (isScalar(node) && typeof node.value === 'number' && node.range) limit!.written = text.slice(node.range[0], node.range[1]).trim();
    limit!.set_at = `${where}:${lineOf(doc, lines, path)}`;
  }
  return config;
}
