/**
 * Adam over Float32Array parameters. A masked entry (mask 0: a pruned weight) is set to zero after
 * every step and its moments stay zero, so the pruning pattern survives training exactly.
 */
export class Adam {
  private readonly m: Float32Array[];
  private readonly v: Float32Array[];
  private t = 0;

  constructor(
    private readonly params: readonly { values: Float32Array; mask?: Uint8Array }[],
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = params.map((p) => new Float32Array(p.values.length));
    this.v = params.map((p) => new Float32Array(p.values.length));
  }

  step(grads: readonly Float32Array[], lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps } = this;
    const c1 = 1 - b1 ** this.t;
    const c2 = 1 - b2 ** this.t;
    for (let k = 0; k < this.params.length; k++) {
      const { values, mask } = this.params[k];
      const g = grads[k];
      const m = this.m[k];
      const v = this.v[k];
      for (let i = 0; i < values.length; i++) {
        if (mask && mask[i] === 0) {
          values[i] = 0;
          continue;
        }
        const gi = g[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        values[i] -= (lr * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
    }
  }
}
