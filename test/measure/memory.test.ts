import { describe, expect, it } from 'vitest';
import { peakMeter } from '../../src/measure/memory.js';

describe('bench peak meter', () => {
  it('sees a short-lived allocation made inside synchronous code, after a reset', () => {
    const meter = peakMeter();
    meter.reset();
    const before = meter.peak();
    let buf: Buffer | undefined = Buffer.alloc(96 * 2 ** 20, 1);
    const sum = buf[0] + buf[buf.length - 1];
    buf = undefined;
    const peak = meter.peak();
    expect(sum).toBe(2);
    // the runners this gates on are Linux, where the kernel's high-water mark sees a buffer already freed
    expect(meter.method).toBe('linux-vmhwm');
    expect(peak - before).toBeGreaterThan(64 * 2 ** 20);
  });
});
