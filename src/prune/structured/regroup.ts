/**
 * A Reshape only regroups the row-major order of its input's elements, so it can be followed exactly by
 * writing every dimension as a product of factors and re-cutting the factor sequence at the output's
 * dimensions. Factors: `opaque` (batch, tokens, spatial: sizes that pruning never changes), `chan`
 * (prunable channels), `heads` (whole attention heads), `width` (the channels inside one head) and
 * `part` (which slice of a fused projection: Q, K or V).
 *
 * [B, T, 3C] -> [B, T, 3, H, D] cuts `chan(3C)` into part(3) · heads(H) · width(D); [T, B, C] ->
 * [T, B·H, D] merges opaque(B) with heads(H) in one dimension; [T, B, H, D] -> [T·B, C] merges
 * heads · width back into channels.
 */
export type FactorKind = 'opaque' | 'chan' | 'heads' | 'width' | 'part';

export interface Factor {
  kind: FactorKind;
  n: number;
}

/** How a channel factor of `n` is read when a Reshape cuts it into `pieces` (major first); a string says why not. */
export type ChannelSplit = (n: number, pieces: readonly number[]) => Factor[] | string;

interface Piece {
  factor: number;
  n: number;
  dim: number;
}

/**
 * The factors of each output dimension, or why the reshape cannot be followed. Only opaque and channel
 * factors may be cut; a channel factor's pieces are named by `splitChannels`.
 */
export function regroup(inDims: readonly (readonly Factor[])[], outShape: readonly number[], splitChannels: ChannelSplit): Factor[][] | string {
  // size-1 factors hold no elements (a selected fused part, a kept batch of one): nothing to place
  const flat = inDims.flat().filter((f) => f.n !== 1);
  const pieces: Piece[] = [];
  let i = 0;
  let rem = flat[0]?.n ?? 1;
  for (let dim = 0; dim < outShape.length; dim++) {
    let need = outShape[dim];
    while (need > 1) {
      if (i >= flat.length) return 'has more output elements than input elements';
      if (rem <= need && need % rem === 0) {
        pieces.push({ factor: i, n: rem, dim });
        need /= rem;
        i++;
        rem = flat[i]?.n ?? 1;
      } else if (rem % need === 0) {
        pieces.push({ factor: i, n: need, dim });
        rem /= need;
        need = 1;
      } else {
        return 'cuts a dimension at a size that does not divide it';
      }
    }
  }
  if (i < flat.length) return 'leaves input dimensions unaccounted for';

  const named: Factor[] = [];
  for (let f = 0; f < flat.length; f++) {
    const mine = pieces.filter((p) => p.factor === f);
    const sizes = mine.map((p) => p.n);
    const factor = flat[f];
    if (mine.length === 1) {
      named.push(factor);
      continue;
    }
    if (factor.kind === 'opaque') {
      for (const n of sizes) named.push({ kind: 'opaque', n });
      continue;
    }
    if (factor.kind !== 'chan') return `cuts ${factor.kind === 'heads' ? 'the head axis' : factor.kind === 'width' ? 'the head width' : 'the fused projection axis'}`;
    const split = splitChannels(factor.n, sizes);
    if (typeof split === 'string') return split;
    named.push(...split);
  }
  const out: Factor[][] = outShape.map(() => []);
  pieces.forEach((p, k) => out[p.dim].push(named[k]));
  return out;
}

/** What one output dimension holds, read from its factors (major first). */
export type DimRole =
  | { role: 'plain' }
  /** heads, merged with leading opaque dims of product `outer` (torch's [B·H, T, D]) */
  | { role: 'heads'; outer: number }
  | { role: 'width' }
  | { role: 'part' }
  /** channels: plain, or heads·width merged back, with a leading fused part when `parts` */
  | { role: 'channels'; parts: boolean }
  | { role: 'mixed' };

export function dimRole(factors: readonly Factor[]): DimRole {
  const kinds = factors.filter((f) => f.n !== 1).map((f) => f.kind);
  if (kinds.every((k) => k === 'opaque')) return { role: 'plain' };
  const key = kinds.join(' ');
  if (/^(opaque )*heads$/.test(key)) {
    const outer = factors.filter((f) => f.kind === 'opaque').reduce((a, f) => a * f.n, 1);
    return { role: 'heads', outer };
  }
  if (key === 'width') return { role: 'width' };
  if (key === 'part') return { role: 'part' };
  if (key === 'chan' || key === 'heads width') return { role: 'channels', parts: false };
  if (key === 'part chan' || key === 'part heads width') return { role: 'channels', parts: true };
  return { role: 'mixed' };
}
