import { distance } from 'fastest-levenshtein';

/** `keepFirstLayer`, `keep_first_layer` and `Keep-First-Layer` all normalise to `keep-first-layer`. */
function normalise(name: string): string {
  return name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[_\s]+/g, '-');
}

/**
 * The valid name a user most likely meant, or undefined when nothing is close enough to be a fair guess
 * (then callers list the valid names instead).
 */
export function closestName(input: string, candidates: readonly string[]): string | undefined {
  const wanted = normalise(input);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = distance(wanted, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  return bestDistance <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/** `; did you mean 'x'?` or `; valid: a, b, c` — the tail of an unknown-name message. */
export function suggestionTail(input: string, candidates: readonly string[]): string {
  const guess = closestName(input, candidates);
  return guess !== undefined ? `; did you mean '${guess}'?` : `; valid: ${candidates.join(', ')}`;
}
