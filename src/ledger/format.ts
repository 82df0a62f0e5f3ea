/** Pure number formatting for the ledger report. Negative numbers use a true minus sign (−). */

const MINUS = '\u2212';

function signed(text: string): string {
  return text.startsWith('-') ? MINUS + text.slice(1) : text;
}

/** A fixed-decimal string that never shows "-0.00". */
function fixed(x: number, digits: number): string {
  const text = x.toFixed(digits);
  return Number(text) === 0 ? (0).toFixed(digits) : signed(text);
}

/** 0.8 -> "80.0%" */
export function percent(fraction: number, digits = 1): string {
  return `${fixed(fraction * 100, digits)}%`;
}

/** A difference of two fractions in percentage points: 0.004 -> "0.40 pt" */
export function points(fraction: number, digits = 2): string {
  return `${fixed(fraction * 100, digits)} pt`;
}

/** Like `points` but always signed: "+0.2 pt", "−0.4 pt", "±0.0 pt" */
export function signedPoints(fraction: number, digits = 1): string {
  const text = fixed(fraction * 100, digits);
  if (Number(text.replace(MINUS, '-')) === 0) return `±${text} pt`;
  return text.startsWith(MINUS) ? `${text} pt` : `+${text} pt`;
}

export function ms(x: number): string {
  return `${fixed(x, 2)} ms`;
}

/** 1.934 -> "1.93x" */
export function ratio(x: number, digits = 2): string {
  return `${fixed(x, digits)}x`;
}

/** 512 -> "512 B", 12_345 -> "12.1 KiB", 2_000_000 -> "1.91 MiB" */
export function bytes(n: number): string {
  if (Math.abs(n) < 1024) return `${fixed(n, 0)} B`;
  if (Math.abs(n) < 1024 ** 2) return `${fixed(n / 1024, 1)} KiB`;
  if (Math.abs(n) < 1024 ** 3) return `${fixed(n / 1024 ** 2, 2)} MiB`;
  return `${fixed(n / 1024 ** 3, 2)} GiB`;
}

const COUNT_UNITS: [string, number][] = [
  ['G', 1e9],
  ['M', 1e6],
  ['k', 1e3],
];

/** Three significant digits: 999 -> "999", 12_345 -> "12.3k", 1_200_000 -> "1.20M" */
export function count(n: number): string {
  for (const [suffix, size] of COUNT_UNITS) {
    if (Math.abs(n) >= size * 0.9995) return `${signed((n / size).toPrecision(3))}${suffix}`;
  }
  return fixed(n, 0);
}
