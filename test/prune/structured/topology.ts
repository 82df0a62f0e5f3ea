import { expect, it } from 'vitest';
import { loadModel } from '../../../src/onnx/model.js';
import { analyzeDependencies } from '../../../src/prune/structured/depgraph.js';
import { renderSkip } from '../../../src/prune/structured/skip.js';
import { present } from '../../support/fixtures.js';
import { exactnessPerGroup } from './exactness.js';

export interface TopologyExpectation {
  prunable: number;
  /** substrings expected among the skip reasons */
  skipped?: string[];
  /** group names (exact) that must be prunable */
  groups?: string[];
}

/** The shared checks of every topology file: groups found as expected, and surgery exact per group. */
export function topologyCases(file: string, want: TopologyExpectation): void {
  it('finds the expected dependency groups and reports skipped ones with a reason', () => {
    const a = analyzeDependencies(loadModel(present(file)).proto);
    const ok = a.groups.filter((g) => !g.skip);
    expect(ok.length).toBe(want.prunable);
    for (const name of want.groups ?? []) expect(ok.map((g) => g.name)).toContain(name);
    const reasons = a.groups.filter((g) => g.skip).map((g) => renderSkip(g.skip!));
    for (const r of want.skipped ?? []) expect(reasons.some((x) => x.includes(r))).toBe(true);
  });

  it('every prunable group: physically removed channels == original with their fan-in zeroed; valid and smaller', async () => {
    const checks = await exactnessPerGroup(present(file), { check: true });
    expect(checks.length).toBe(want.prunable);
    for (const c of checks) {
      expect(c.diff, c.group).toBeLessThan(1e-4);
      expect(c.smaller, c.group).toBe(true);
    }
  }, 60_000);
}
