import { describe, expect, it } from 'vitest';
import { renderHeadline, renderMarkdown } from '../../src/ledger/render.js';
import { sampleLedger, sampleModel, step } from './fixtures.js';

describe('renderHeadline', () => {
  it('shows verdict, file name, sparsity, speedup and signed accuracy change', () => {
    expect(renderHeadline(sampleModel())).toBe('**FAIL** · mlp.onnx: 80.0% sparse, 1.9x faster, −0.40 pt accuracy');
  });

  it('leaves out parts that were not measured', () => {
    const model = sampleModel({
      verdict: 'pass',
      steps: [step({ latency: null, accuracy: null }), step({ name: 'prune', sparsity: 0.5, latency: null })],
    });
    expect(renderHeadline(model)).toBe('**PASS** · mlp.onnx: 50.0% sparse');
  });

  it('says slower when the pruned model is slower and shows a gain with a plus sign', () => {
    const model = sampleModel({
      verdict: 'warn',
      steps: [
        step(),
        step({ name: 'prune', accuracy: 0.894, latency: { batch: 1, p50_ms: 0.84, p95_ms: 1, runs: 30 } }),
      ],
    });
    expect(renderHeadline(model)).toBe('**WARN** · mlp.onnx: 0.0% sparse, 2.0x slower, +0.20 pt accuracy');
  });
});

/** What a reader sees: non-breaking spaces and hyphens (which keep cells from wrapping) read as plain ones. */
const norm = (md: string): string => md.replace(/\u00a0/g, ' ').replace(/\u2011/g, '-');
/** The text above the first fold: what a reviewer reads before expanding anything. */
const firstScreen = (md: string): string => norm(md.slice(0, md.indexOf('<details>')));

describe('renderMarkdown', () => {
  const text = renderMarkdown(sampleLedger());

  it('opens with the verdict, then every budget that did not pass with its limit, value and margin, above the first fold', () => {
    expect(text.startsWith('### prune-guard ❌ FAIL\n')).toBe(true);
    const top = firstScreen(text);
    expect(top).toContain('**1 budget fails and 1 warns** on `models/mlp.onnx`:');
    expect(top).toContain('- ❌ `class-accuracy-drop` (dense → pruned) **5.00 pt**, limit ≤ 3 pt, 2.00 pt over');
    expect(top).toContain('- ⚠️ `latency-regression` (dense → pruned) limit ≤ 10%: not measured: no base model to compare against');
    // the passing budgets are not in the reviewer's way
    expect(top).not.toContain('`accuracy-drop`');
  });

  it('says where the limits were set and which levers change the outcome, in the CLI\'s words', () => {
    expect(firstScreen(text)).toContain(
      '**What to do:** `class-accuracy-drop` ≤ 3 pt and `latency-regression` ≤ 10% are set in the config file. Lower `sparsity` (now 0.8), add `--calib` so recovery wins accuracy back, or raise the limit.',
    );
  });

  it('puts the budgets that did not pass in one unfolded table of at most 7 columns, the rest in the model\'s fold', () => {
    const top = firstScreen(text);
    expect(top).toContain('| Budget | Limit | Measured | Margin | Why |');
    expect(top).toContain('| ❌ `class-accuracy-drop`<br><sub>dense → pruned</sub> | ≤ 3 pt | 5.00 pt | 2.00 pt over | class 0: 90.00% → 85.00% |');
    expect(text).toContain('<details><summary>❌ <code>models/mlp.onnx</code> · 80.0% sparse, 1.9x faster, −0.40 pt accuracy — full ledger</summary>');
    for (const line of norm(text).split('\n').filter((l) => l.startsWith('| '))) expect(line.split(' | ').length).toBeLessThanOrEqual(7);
  });

  it('formats every budget in the fold in its unit: points, a ratio, the size unit the limit reads in', () => {
    const md = norm(text);
    expect(md).toContain('| `accuracy-drop`<br><sub>dense → pruned</sub> | ≤ 1 pt | 0.40 pt | 0.60 pt to spare | ✅ pass | 89.20% → 88.80% |');
    expect(md).toContain('| `min-speedup`<br><sub>dense → pruned</sub> | ≥ 1.5x | 1.91x | 0.41x to spare | ✅ pass | p50 0.42 ms → 0.22 ms at batch 1 |');
    // 2 MiB written as such reads back as MiB; the detail (the file's path) is not repeated
    expect(md).toContain('| `max-size-bytes`<br><sub>dense → pruned</sub> | ≤ 2 MiB | 1.91 MiB | 94.88 KiB to spare | ✅ pass | |');
    expect(md).toContain('| `class-accuracy-drop`<br><sub>dense → pruned</sub> | ≤ 3 pt | 5.00 pt | 2.00 pt over | ❌ fail | class 0: 90.00% → 85.00% |');
    expect(md).toContain('| `latency-regression`<br><sub>dense → pruned</sub> | ≤ 10% | — | — | ⚠️ warn | not measured: no base model');
  });

  it('shows a limit as the user wrote it, in decimal MB when it was 2MB, and names where it was set', () => {
    const model = sampleModel();
    model.budgets[0] = { ...model.budgets[0], actual: 0.009, verdict: 'fail', limit: 0.005, written: '0.5pt', set_at: '/home/runner/work/repo/prune-guard.yml:12' };
    model.budgets[3] = { ...model.budgets[3], limit: 2_000_000, actual: 2_080_000, verdict: 'fail', detail: '/home/runner/work/repo/out/mlp.pruned.onnx' };
    const md = renderMarkdown({ ...sampleLedger(), models: [model] });
    const top = firstScreen(md);
    expect(top).toContain('- ❌ `accuracy-drop` (dense → pruned) **0.90 pt**, limit ≤ 0.5pt, 0.40 pt over');
    expect(top).toContain('- ❌ `max-size-bytes` (dense → pruned) **2.08 MB**, limit ≤ 2 MB, 80.00 kB over');
    expect(top).toContain('`accuracy-drop` ≤ 0.5pt is set at `prune-guard.yml:12`');
    expect(md).not.toContain('/home/runner');
  });

  it('says why a warning is one when its interval reaches across the limit, with p-values as p<0.001', () => {
    const model = sampleModel();
    model.budgets[0] = { ...model.budgets[0], actual: 0.008, verdict: 'warn', ci: [0.002, 0.014], confidence: 0.95, p_value: 1e-7, detail: '89.20% → 88.40%; interval straddles the limit' };
    const md = norm(renderMarkdown({ ...sampleLedger(), models: [model] }));
    expect(md).toContain('- ⚠️ `accuracy-drop` (dense → pruned) **0.80 pt**, limit ≤ 1 pt, 0.20 pt to spare: its interval [0.20 pt, 1.40 pt] 95% reaches across the limit: too close to call');
    expect(md).toContain('| 0.80 pt<br><sub>[0.20 pt, 1.40 pt] 95%</sub> | 0.20 pt to spare | the interval reaches across the limit: too close to call; 89.20% → 88.40%; p<0.001 |');
    expect(md).toContain('evaluate on more samples to narrow the interval');
    expect(md).not.toMatch(/e-\d|straddles/);
  });

  it('has two narrow step tables: quality and speed, then size', () => {
    const md = norm(text);
    expect(md).toContain('| Step | Accuracy | ECE | Agreement | p50 ms (b=1) | p95 ms (b=1) |');
    expect(md).toContain('| prune | 88.80% | 3.50% | 97.00% | 0.22 | 0.31 |');
    expect(md).toContain('| Step | Sparsity | Params | Nonzero | MACs | Size | Gzip |');
    expect(md).toContain('| dense | 0.0% | 118k | 118k | 118k | 462.9 KiB | 427.7 KiB |');
    expect(md).toContain('| prune | 80.0% | 118k | 23.7k | 118k | 1.91 MiB | 146.5 KiB |');
  });

  it('reports structured pruning as weights removed, the way the headline does', () => {
    const model = sampleModel({ method: 'structured', verdict: 'pass', budgets: [] });
    expect(renderHeadline(model)).toBe('**PASS** · mlp.onnx: 80.0% of prunable weights removed, 1.9x faster, −0.40 pt accuracy');
    const md = renderMarkdown({ ...sampleLedger(), verdict: 'pass', models: [model] });
    expect(md).toContain('| Step | Weights removed | Params | Nonzero | MACs | Size | Gzip |');
  });

  it('lists only classes that lost accuracy, largest first', () => {
    expect(text).toContain('**Classes that lost most**');
    expect(text).toContain('| 0 | 90.0% | 85.0% | 5.0 pt | 100 |');
    expect(text).not.toContain('| 2 | 80.0% |');
  });

  it('keeps at most five classes', () => {
    const changes = [1, 2, 3, 4, 5, 6, 7].map((c) => ({ class: c, dense: 0.9, pruned: 0.9 - c / 100, drop: c / 100, support: 10 }));
    const ledger = { ...sampleLedger(), models: [sampleModel({ class_changes: changes })] };
    const rows = renderMarkdown(ledger).split('\n').filter((l) => /^\| \d \| 90\.0%/.test(l));
    expect(rows.map((r) => r.split(' | ')[0])).toEqual(['| 7', '| 6', '| 5', '| 4', '| 3']);
  });

  it('leaves out a column that says nothing in every row, such as energy on a runner without power counters', () => {
    const cost = { load_ms: 2, energy_j_per_sample: null, energy_note: 'no RAPL', peak_rss_bytes: 100_000_000, session_rss_bytes: 1_000_000 };
    const model = sampleModel();
    model.steps = model.steps.map((s) => ({ ...s, runtime_cost: cost }));
    const md = renderMarkdown({ ...sampleLedger(), models: [model] });
    expect(md).toContain('| Step | Load ms | Peak RSS (model adds) |');
    expect(md).not.toContain('not available');
    model.steps[1].runtime_cost = { ...cost, energy_j_per_sample: 0.002 };
    expect(renderMarkdown({ ...sampleLedger(), models: [model] })).toContain('| 2.000 mJ |');
  });

  it('escapes pipes so a detail cannot break the table', () => {
    const model = sampleModel();
    model.budgets[1] = { ...model.budgets[1], detail: 'a|b' };
    expect(renderMarkdown({ ...sampleLedger(), models: [model] })).toContain('| a\\|b |');
  });

  it('ends with one footer', () => {
    expect(text.match(/onnxruntime 1\.30\.0/g)).toHaveLength(1);
    expect(text.trimEnd().endsWith('<sub>prune-guard 0.1.0 · onnxruntime 1.30.0 (cpu, 2 threads, linux-x64) · 2025-01-02T03:04:05.000Z</sub>')).toBe(true);
  });

  it('is deterministic', () => {
    expect(renderMarkdown(sampleLedger())).toBe(text);
  });
});

describe('a pull request against its base', () => {
  const withBase = (baseVerdict: 'pass' | 'fail') => {
    const model = sampleModel();
    const [dense, pruned] = model.steps;
    model.vs_base = {
      ref: 'a'.repeat(40),
      model: 'models/mlp.onnx',
      steps: [dense, { ...pruned, sparsity: 0.8 }],
      pair: [{ ...pruned, sparsity: 0, accuracy: 0.9 }, { ...pruned, sparsity: 0 }],
      budgets: [{ name: 'accuracy-drop', limit: 0.01, actual: 0.012, verdict: 'fail', direction: 'max', source: 'default', detail: '90.00% → 88.80%', ci: [0.011, 0.013], confidence: 0.95, p_value: 0.0001 }],
      base_budgets: [{ ...model.budgets[1], actual: baseVerdict === 'fail' ? 0.04 : 0.01, verdict: baseVerdict }],
      verdict: 'fail',
    };
    return renderMarkdown({ ...sampleLedger(), models: [model] });
  };

  it('marks each failing budget new in this pull request or already failing on base, beside head against base', () => {
    const top = firstScreen(withBase('pass'));
    expect(top).toContain('- ❌ `class-accuracy-drop` (dense → pruned) **5.00 pt**, limit ≤ 3 pt, 2.00 pt over · new in this PR (base 1.00 pt)');
    expect(top).toContain('- ❌ `accuracy-drop` (base → head) **1.20 pt**, limit ≤ 1 pt, 0.20 pt over');
    expect(top).toContain('| Budget | Limit | Measured | Margin | On base | Why |');
    expect(firstScreen(withBase('fail'))).toContain('· already failing on base (4.00 pt)');
  });

  it('points at the model change when the head is already worse than base before pruning', () => {
    const model = sampleModel();
    const [dense, pruned] = model.steps;
    model.vs_base = {
      ref: 'b'.repeat(40),
      model: 'models/mlp.onnx',
      steps: [{ ...dense, accuracy: 0.95 }, { ...pruned, accuracy: 0.948 }],
      budgets: [{ name: 'accuracy-drop', limit: 0.01, actual: 0.06, verdict: 'fail', direction: 'max', source: 'default', detail: '94.80% → 88.80%' }],
      verdict: 'fail',
    };
    const top = firstScreen(renderMarkdown({ ...sampleLedger(), models: [model] }));
    expect(top).toContain('The head model is 5.80 pt less accurate than base before pruning (95.00% → 89.20%): the model change itself, not pruning, loses it. Lower `sparsity` (now 0.8)');
  });

  it('shows base and head side by side with each run\'s own sparsity, the rest from the pair measured together', () => {
    const md = norm(withBase('pass'));
    expect(md).toContain('**Against base**: `models/mlp.onnx` at aaaaaaaaaaaa (merge base)');
    expect(md).toContain('| Sparsity | 80.0% | 80.0% | ±0.0 pt |');
    expect(md).toContain('| Accuracy | 90.00% | 88.80% | −1.20 pt |');
  });
});

describe('compare', () => {
  it('tells a size limit the head breaks from one the base already broke', () => {
    const model = sampleModel({ method: 'compare' });
    model.budgets = [{ name: 'max-size-bytes', limit: 1_000_000, actual: 2_000_000, verdict: 'fail', direction: 'max', source: 'flag', detail: 'out/mlp.pruned.onnx' }];
    const top = firstScreen(renderMarkdown({ ...sampleLedger(), models: [model] }));
    expect(top).toContain('- ❌ `max-size-bytes` (base → head) **2.00 MB**, limit ≤ 1 MB, 1.00 MB over · new in head (base 474.00 kB)');
    model.budgets[0].limit = 400_000;
    expect(firstScreen(renderMarkdown({ ...sampleLedger(), models: [model] }))).toContain('limit ≤ 400 kB, 1.60 MB over · already over on base (474.00 kB)');
  });
});

describe('budgets held as a minimum', () => {
  it('a pruning that fell short of its target reads as an unsigned share, with its lever and "lower the limit"', () => {
    const model = sampleModel();
    model.budgets = [
      { name: 'target-reduction', limit: 0.75, written: '75%', actual: 0, verdict: 'fail', direction: 'min', source: 'default', detail: '0.0% of prunable weights removed where 80.0% was asked' },
      { name: 'min-speedup', limit: 2, actual: 1.1, verdict: 'fail', direction: 'min', source: 'flag', detail: 'p50 0.42 ms → 0.38 ms at batch 1' },
    ];
    const top = firstScreen(renderMarkdown({ ...sampleLedger(), models: [model] }));
    expect(top).toContain('- ❌ `target-reduction` (dense → pruned) **0.0%**, limit ≥ 75%, 75.0 pt short');
    expect(top).toContain('Let the groups left whole be pruned (the notes say why each was) or ask for less');
    expect(top).toMatch(/, or lower the limit\.\n/);
    expect(top).not.toContain('raise the limit');
  });
});

describe('several models', () => {
  it('give one headline line per model that did not pass, short names in the table, and a fold each', () => {
    const a = sampleModel({ model: 'models/team-a/model.onnx' });
    const b = sampleModel({ model: 'models/team-b/model.onnx' });
    const ok = sampleModel({ model: 'models/ok.onnx', verdict: 'pass', budgets: [sampleModel().budgets[0]] });
    const md = norm(renderMarkdown({ ...sampleLedger(), models: [a, ok, b] }));
    const top = firstScreen(md);
    expect(top).toContain('**2 budgets fail and 2 warn** on 2 of 3 models:');
    expect(top).toContain('- `models/team-a/model.onnx`: ❌ `class-accuracy-drop` **5.00 pt** > 3 pt (2.00 pt over); ⚠️ `latency-regression` not measured');
    expect(top).toContain('| Model | Budget | Limit | Measured | Margin | Why |');
    expect(top).toContain('| `team-b/model.onnx` | ❌ `class-accuracy-drop`');
    expect(top).toContain('1 other model passes every budget.');
    expect(md.match(/<details><summary>/g)).toHaveLength(3);
  });
});

describe('pruning notes', () => {
  it('are listed after the tables, one bullet each, and absent when there are none', () => {
    const notes = ['2:4: fan-in not a multiple of 4, so the last entries of each row stay dense (16 weights): conv1.weight (fan-in 9: last 1 per row)'];
    const md = renderMarkdown({ ...sampleLedger(), models: [sampleModel({ notes })] });
    expect(md).toContain(`**Notes**\n- ${notes[0]}\n`);
    expect(renderMarkdown(sampleLedger())).not.toContain('**Notes**');
  });
});

describe('where the speed went', () => {
  const funnel = (o: Partial<NonNullable<ReturnType<typeof step>['funnel']>> = {}) => ({
    batch: 1,
    params_ratio: 1,
    flops_ratio: 1,
    sparse_flops_ratio: 1,
    ideal_speedup: 1,
    speedup: 1,
    efficiency: 1,
    p_value: 1,
    speed: 'unchanged' as const,
    ...o,
  });
  const withFunnel = (method: string, pruned: Partial<NonNullable<ReturnType<typeof step>['funnel']>>) => {
    const base = sampleModel({ method });
    const [dense, prune] = base.steps;
    return sampleModel({
      method,
      steps: [
        { ...dense, sparse_bytes: 480_000, funnel: funnel() },
        { ...prune, sparse_bytes: 110_000, funnel: funnel({ params_ratio: 0.2, sparse_flops_ratio: 0.21, ideal_speedup: 1 / 0.21, ...pruned }) },
      ],
    });
  };

  it('headline says "speed unchanged within noise" when the samples do not support a change', () => {
    const model = withFunnel('unstructured', { speedup: 1.91, efficiency: 0.4, p_value: 0.2, speed: 'unchanged' });
    expect(renderHeadline(model)).toBe('**FAIL** · mlp.onnx: 80.0% sparse, speed unchanged within noise, −0.40 pt accuracy');
  });

  it('headline claims the speedup when the samples support it, with two decimals near 1', () => {
    expect(renderHeadline(withFunnel('unstructured', { speedup: 1.91, speed: 'faster', p_value: 0.001 }))).toContain('1.9x faster');
    const near = withFunnel('unstructured', { speed: 'faster' });
    near.steps[1].latency = { batch: 1, p50_ms: 0.42 / 1.04, p95_ms: 0.5, runs: 30 };
    expect(renderHeadline(near)).toContain('1.04x faster');
  });

  it('renders the funnel table and, for unstructured and N:M, says plainly that CPU does not exploit the zeros and shows sizes apart', () => {
    for (const method of ['unstructured', '2:4']) {
      const md = renderMarkdown({ ...sampleLedger(), models: [withFunnel(method, { speedup: 1.02, efficiency: 1.02 * 0.21, p_value: 0.41, speed: 'unchanged' })] });
      expect(md).toContain('**Where the speed went**');
      expect(md).toContain('| Step | Nonzero params | MACs run | MACs on nonzero weights | Ideal speedup | Measured speedup (p50) | Efficiency |');
      expect(md).toContain('| prune | 20.0% | 100.0% | 21.0% | 4.76x | 1.02x (within noise, p=0.410) | 21% |');
      expect(md).toContain('| dense | 100.0% | 100.0% | 100.0% | 1.00x | baseline | — |');
      expect(md).toMatch(/onnxruntime on CPU does not exploit .*sparsity: .* the ideal 4\.76x is not reached here \(measured 1\.02x, within noise\)/);
      expect(md).toContain('| prune | 1.91 MiB | 146.5 KiB | 107.4 KiB |');
    }
  });

  it('shows weight bytes where the ledger measured them (a quantized step), and leaves the column out where it did not', () => {
    const md = renderMarkdown({ ...sampleLedger(), models: [withFunnel('unstructured', { bytes_ratio: 0.26 })] });
    expect(md).toContain('| Step | Nonzero params | MACs run | MACs on nonzero weights | Weight bytes | Ideal speedup | Measured speedup (p50) | Efficiency |');
    expect(md).toContain('| prune | 20.0% | 100.0% | 21.0% | 26.0% | 4.76x |');
    expect(renderMarkdown({ ...sampleLedger(), models: [withFunnel('unstructured', {})] })).not.toContain('Weight bytes');
  });

  it('headline of a quantized model gives its size against dense instead of the zeros rounding made', () => {
    const model = sampleModel();
    model.steps[1] = { ...model.steps[1], sparsity: 0.01, size_bytes: 123_240, quantize: {} as NonNullable<ReturnType<typeof step>['quantize']> };
    expect(renderHeadline(model)).toBe('**FAIL** · mlp.onnx: INT8 (0.26x the size), 1.9x faster, −0.40 pt accuracy');
  });

  it('has no CPU note for methods that really remove work, and no section without funnels', () => {
    const md = renderMarkdown({ ...sampleLedger(), models: [withFunnel('structured', { speedup: 1.6, speed: 'faster', p_value: 0.0001, flops_ratio: 0.5 })] });
    expect(md).toContain('**Where the speed went**');
    expect(md).toContain('1.60x (faster, p<0.001)');
    expect(md).not.toContain('does not exploit');
    expect(renderMarkdown(sampleLedger())).not.toContain('Where the speed went');
  });
});
