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

/** 12.345 -> "12.35 ms"; below 0.1 ms three decimals, so a tiny model's latency does not round to "0.02". */
export function ms(x: number): string {
  return `${latency(x)} ms`;
}

/** A latency in milliseconds without the unit, as in table columns headed "ms". */
export function latency(x: number): string {
  return fixed(x, Math.abs(x) < 0.1 && x !== 0 ? 3 : 2);
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

/** A p-value as a reader compares it with 0.05: "p<0.001" for the tiny ones, else three decimals. */
export function pValue(p: number): string {
  return p < 0.001 ? 'p<0.001' : `p=${p.toFixed(3)}`;
}

/** At most `digits` decimals, trailing zeros dropped: 0.5 -> "0.5", 1 -> "1", 0.0123 -> "0.01". */
export function trimmed(x: number, digits = 2): string {
  return signed(String(Number(x.toFixed(digits)) || 0));
}

/** Byte units a user writes in a budget (`2MB`, `1.5MiB`), largest first. */
const SIZE_UNITS: [string, number][] = [
  ['GB', 1e9],
  ['GiB', 2 ** 30],
  ['MB', 1e6],
  ['MiB', 2 ** 20],
  ['kB', 1e3],
  ['KiB', 2 ** 10],
];

/**
 * The unit a size limit was most likely written in: the largest one that states it with at most two
 * decimals (2,000,000 -> MB, 1,572,864 -> MiB), so "2MB" reads back as "2 MB", never "1.91 MiB".
 */
export function sizeUnit(n: number): [string, number] {
  for (const unit of SIZE_UNITS) {
    const scaled = Math.abs(n) / unit[1];
    if (scaled >= 1 && Math.abs(scaled * 100 - Math.round(scaled * 100)) < 1e-6) return unit;
  }
  return Math.abs(n) >= 1e6 ? ['MB', 1e6] : Math.abs(n) >= 1e3 ? ['kB', 1e3] : ['B', 1];
}

/** A size in a given unit: (2_080_000, ['MB', 1e6]) -> "2.08 MB"; `exact` drops trailing zeros. */
export function sizeIn(n: number, [name, scale]: [string, number], exact = false): string {
  if (scale === 1) return `${fixed(n, 0)} B`;
  return `${exact ? trimmed(n / scale, 2) : fixed(n / scale, 2)} ${name}`;
}

/**
 * A size in the family of units a limit was written in (MB and kB, or MiB and KiB), at the scale that
 * suits the value: beside a "400 kB" limit, 2,000,000 bytes reads "2.00 MB", not "2000.00 kB".
 */
export function sizeLike(n: number, limitUnit: [string, number]): string {
  const binary = limitUnit[0].includes('i');
  const family = SIZE_UNITS.filter(([name]) => name.includes('i') === binary);
  return sizeIn(n, family.find(([, scale]) => Math.abs(n) >= scale) ?? ['B', 1]);
}
