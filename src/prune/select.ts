/**
 * The k-th smallest value (0-based) of `values`, in expected O(n) by introselect-style quickselect with
 * median-of-three pivots. Reorders `values` in place: pass a scratch copy. A full sort of 25 M weights
 * takes seconds; this takes a fraction of one.
 */
export function kthSmallest(values: Float32Array, k: number): number {
  if (k < 0 || k >= values.length) throw new RangeError(`k=${k} outside 0..${values.length - 1}`);
  let lo = 0;
  let hi = values.length - 1;
  while (hi > lo) {
    if (hi - lo < 16) {
      insertionSort(values, lo, hi);
      return values[k];
    }
    const mid = (lo + hi) >>> 1;
    // median of three, moved to `hi` as the pivot
    if (values[mid] < values[lo]) swap(values, mid, lo);
    if (values[hi] < values[lo]) swap(values, hi, lo);
    if (values[mid] < values[hi]) swap(values, mid, hi);
    const pivot = values[hi];
    // three-way partition: [lo, lt) < pivot, [lt, gt] == pivot, (gt, hi] > pivot; keeps ties O(n)
    let lt = lo;
    let gt = hi;
    let i = lo;
    while (i <= gt) {
      const v = values[i];
      if (v < pivot) swap(values, i++, lt++);
      else if (v > pivot) swap(values, i, gt--);
      else i++;
    }
    if (k < lt) hi = lt - 1;
    else if (k > gt) lo = gt + 1;
    else return pivot;
  }
  return values[k];
}

function swap(a: Float32Array, i: number, j: number): void {
  const t = a[i];
  a[i] = a[j];
  a[j] = t;
}

function insertionSort(a: Float32Array, lo: number, hi: number): void {
  for (let i = lo + 1; i <= hi; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= lo && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}
