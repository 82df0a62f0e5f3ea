/**
 * ONNX Einsum equations, resolved against the ranks of the operands: which label sits on every axis of
 * every operand and of the output. An ellipsis becomes one label per broadcast axis (`…0` for the last
 * such axis, `…1` before it, so operands of different ranks line up from the right, as numpy broadcasts
 * them). Pure: shape inference, MAC counts and the channel analysis all read the same parse.
 */
export interface Einsum {
  /** per operand, the label of each axis */
  inputs: string[][];
  /** the label of each output axis */
  output: string[];
}

const ELLIPSIS = '...';

const ellipsisLabel = (fromRight: number) => `…${fromRight}`;

function splitTerm(term: string): { before: string[]; ellipsis: boolean; after: string[] } {
  const at = term.indexOf(ELLIPSIS);
  if (at < 0) return { before: [...term], ellipsis: false, after: [] };
  if (term.indexOf(ELLIPSIS, at + 1) >= 0) throw new Error(`'${term}' has more than one ellipsis`);
  return { before: [...term.slice(0, at)], ellipsis: true, after: [...term.slice(at + ELLIPSIS.length)] };
}

function checkLabels(labels: readonly string[], term: string): void {
  for (const l of labels) if (!/^[A-Za-z]$/.test(l)) throw new Error(`'${term}' has '${l}', which is not a letter`);
}

/**
 * Parse `equation` for operands of the given ranks. Throws on an equation that does not fit them (a
 * wrong operand count, a term longer than its operand, an output label no input has).
 */
export function parseEinsum(equation: string, ranks: readonly number[]): Einsum {
  const eq = equation.replace(/\s+/g, '');
  const arrow = eq.indexOf('->');
  const lhs = arrow >= 0 ? eq.slice(0, arrow) : eq;
  const terms = lhs.split(',');
  if (terms.length !== ranks.length) throw new Error(`'${equation}' names ${terms.length} operands, the node has ${ranks.length}`);
  let ellipsisRank = 0;
  const inputs = terms.map((term, k) => {
    const { before, ellipsis, after } = splitTerm(term);
    checkLabels([...before, ...after], term);
    const broadcast = ranks[k] - before.length - after.length;
    if (broadcast < 0 || (!ellipsis && broadcast !== 0)) throw new Error(`'${term}' does not fit an operand of rank ${ranks[k]}`);
    ellipsisRank = Math.max(ellipsisRank, broadcast);
    const middle = Array.from({ length: broadcast }, (_, i) => ellipsisLabel(broadcast - 1 - i));
    return [...before, ...middle, ...after];
  });
  const broadcastLabels = Array.from({ length: ellipsisRank }, (_, i) => ellipsisLabel(ellipsisRank - 1 - i));
  let output: string[];
  if (arrow >= 0) {
    const { before, ellipsis, after } = splitTerm(eq.slice(arrow + 2));
    checkLabels([...before, ...after], eq.slice(arrow + 2));
    output = [...before, ...(ellipsis ? broadcastLabels : []), ...after];
    const known = new Set(inputs.flat());
    for (const l of output) if (!known.has(l)) throw new Error(`'${equation}': output label '${l}' is in no input`);
    if (new Set(output).size !== output.length) throw new Error(`'${equation}': an output label repeats`);
  } else {
    // implicit form: broadcast axes first, then the letters seen exactly once, alphabetically
    const count = new Map<string, number>();
    for (const l of inputs.flat()) if (!l.startsWith('…')) count.set(l, (count.get(l) ?? 0) + 1);
    output = [...broadcastLabels, ...[...count].filter(([, n]) => n === 1).map(([l]) => l).sort()];
  }
  return { inputs, output };
}

/** Size of every label; undefined when operands disagree (a broadcast label may be 1 in some). */
export function labelSizes(e: Einsum, shapes: readonly (readonly number[])[]): Map<string, number> | undefined {
  const sizes = new Map<string, number>();
  for (let k = 0; k < e.inputs.length; k++) {
    const labels = e.inputs[k];
    for (let a = 0; a < labels.length; a++) {
      const l = labels[a];
      const d = shapes[k][a];
      const prior = sizes.get(l);
      if (prior === undefined || prior === 1) sizes.set(l, d);
      else if (d !== prior && !(d === 1 && l.startsWith('…'))) return undefined;
    }
  }
  return sizes;
}

export function einsumShape(e: Einsum, shapes: readonly (readonly number[])[]): number[] | undefined {
  const sizes = labelSizes(e, shapes);
  return sizes && e.output.map((l) => sizes.get(l)!);
}

/**
 * Multiply-accumulates of an Einsum: every combination of label values is one product of all operands,
 * so `(operands - 1)` times the product of every label's size. A single operand only sums or permutes: 0.
 */
export function einsumMacs(e: Einsum, shapes: readonly (readonly number[])[]): number | undefined {
  const sizes = labelSizes(e, shapes);
  if (!sizes) return undefined;
  let n = 1;
  for (const d of sizes.values()) n *= d;
  return (e.inputs.length - 1) * n;
}
