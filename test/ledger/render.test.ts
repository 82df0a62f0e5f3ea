import { describe, expect, it } from 'vitest';
import { renderHeadline, renderMarkdown } from '../../src/ledger/render.js';
import { sampleLedger, sampleModel, step } from './fixtures.js';

describe('renderHeadline', () => {
  it('shows verdict, file name, sparsity, speedup and signed accuracy change', () => {
    expect(renderHeadline(sampleModel())).toBe('**FAIL** · mlp.onnx: 80.0% sparse, 1.9x faster, −0.4 pt accuracy');
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
    expect(renderHeadline(model)).toBe('**WARN** · mlp.onnx: 0.0% sparse, 2.0x slower, +0.2 pt accuracy');
  });
});

describe('renderMarkdown', () => {
  const text = renderMarkdown(sampleLedger());

  it('opens with the overall verdict and the model headline', () => {
    expect(text.startsWith('### prune-guard ❌ FAIL\n')).toBe(true);
    expect(text).toContain('**FAIL** · mlp.onnx: 80.0% sparse, 1.9x faster, −0.4 pt accuracy');
  });

  it('formats budget limits and actuals in their units', () => {
    expect(text).toContain('| `accuracy-drop` | ≤ 1.00 pt | 0.40 pt | ✅ pass | 89.20% → 88.80% |');
    expect(text).toContain('| `min-speedup` | ≥ 1.50x | 1.91x | ✅ pass |');
    expect(text).toContain('| `max-size-bytes` | ≤ 2.00 MiB | 1.91 MiB | ✅ pass |');
  });

  it('marks a failed budget with ❌ and an unmeasured one with ⚠️ and a dash', () => {
    expect(text).toContain('| `class-accuracy-drop` | ≤ 3.00 pt | 5.00 pt | ❌ fail | class 0: 90.00% → 85.00% |');
    expect(text).toContain('| `latency-regression` | ≤ 10.0% | — | ⚠️ warn | not measured: no base model');
  });

  it('has a step table with formatted counts, sizes, rates and latencies at the primary batch', () => {
    expect(text).toContain('| Step | Sparsity | Params | Nonzero | MACs | Size | Gzip | Accuracy | ECE | Agreement | p50 ms (b=1) | p95 ms (b=1) |');
    expect(text).toContain('| dense | 0.0% | 118k | 118k | 118k | 462.9 KiB | 427.7 KiB | 89.20% | 3.00% | 100.00% | 0.42 | 0.50 |');
    expect(text).toContain('| prune | 80.0% | 118k | 23.7k | 118k | 1.91 MiB | 146.5 KiB | 88.80% | 3.50% | 97.00% | 0.22 | 0.31 |');
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

  it('escapes pipes so a detail cannot break the table', () => {
    const model = sampleModel();
    model.budgets[0] = { ...model.budgets[0], detail: 'a|b' };
    expect(renderMarkdown({ ...sampleLedger(), models: [model] })).toContain('| a\\|b |');
  });

  it('is deterministic', () => {
    expect(renderMarkdown(sampleLedger())).toBe(text);
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
    expect(renderHeadline(model)).toBe('**FAIL** · mlp.onnx: 80.0% sparse, speed unchanged within noise, −0.4 pt accuracy');
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
      expect(md).toContain('| Step | Nonzero params | MACs run | MACs with nonzero weight | Weight bytes | Ideal speedup | p50 ms | p95 ms | Speedup (p50) | Efficiency |');
      expect(md).toContain('| prune | 20.0% | 100.0% | 21.0% | — | 4.76x | 0.22 | 0.31 | 1.02x (within noise, p=0.410) | 21% |');
      expect(md).toContain('| dense | 100.0% | 100.0% | 100.0% | — | 1.00x | 0.42 | 0.50 | baseline | — |');
      expect(md).toMatch(/onnxruntime on CPU does not exploit .*sparsity: .* the ideal 4\.76x is not reached here \(measured 1\.02x, within noise\)/);
      expect(md).toContain('| prune | 1.91 MiB | 146.5 KiB | 107.4 KiB |');
    }
  });

  it('has no CPU note for methods that really remove work, and no section without funnels', () => {
    const md = renderMarkdown({ ...sampleLedger(), models: [withFunnel('structured', { speedup: 1.6, speed: 'faster', p_value: 0.0001, flops_ratio: 0.5 })] });
    expect(md).toContain('**Where the speed went**');
    expect(md).toContain('1.60x (faster, p=<0.001)');
    expect(md).not.toContain('does not exploit');
    expect(renderMarkdown(sampleLedger())).not.toContain('Where the speed went');
  });
});
