/**
 * Why a dependency group is left unpruned. Each kind says what stopped the analysis and, rendered, what
 * the user can do about it: most are properties of the model a user can change at export time, a few
 * are the model's contract (its outputs) or the user's own choice (excluded layers).
 */
export type SkipReason =
  /** the channels reach a graph output, whose shape is the model's contract */
  | { kind: 'graph-output'; output: string }
  /** the channels are added to (or joined with) a graph input, whose width is fixed by the caller */
  | { kind: 'graph-input'; node: string; input: string }
  /** mean and variance are taken over the channels (LayerNorm on a transformer's residual stream) */
  | { kind: 'normalization'; node: string; op: string }
  /** a weight of the group is kept dense by --exclude, --keep-first-layer or --keep-last-layer */
  | { kind: 'protected'; tensor: string }
  /** the channels are looked up in an embedding table, which is never pruned */
  | { kind: 'embedding'; table: string }
  /** a grouped (not depthwise) convolution: its groups must stay equal */
  | { kind: 'grouped-conv'; node: string; group: number; perGroup: number }
  /** a channel count is computed from a runtime shape and used where no rewrite can follow it */
  | { kind: 'shape-arithmetic'; node: string; op: string; detail: string }
  /** a weight or bias is computed at run time instead of stored */
  | { kind: 'not-constant'; node: string; tensor: string }
  /** a sliced constant is also read by a node outside the group */
  | { kind: 'shared-constant'; tensor: string; reader: string; op: string }
  /** the graph reaches the group's channels through an op or layout the analysis does not follow */
  | { kind: 'unsupported'; node: string; op: string; detail: string };

export type SkipKind = SkipReason['kind'];

/** What happened, in one clause. */
export function skipText(r: SkipReason): string {
  switch (r.kind) {
    case 'graph-output':
      return `reaches graph output '${r.output}', whose shape must not change`;
    case 'graph-input':
      return `${r.node} combines the channels with graph input '${r.input}', whose width is fixed`;
    case 'normalization':
      return `${r.node} (${r.op}) normalises over the channel axis (removing a channel would change how every other one is normalised)`;
    case 'protected':
      return `'${r.tensor}' is kept dense (exclude / keep-first-layer / keep-last-layer)`;
    case 'embedding':
      return `the channels start in embedding table '${r.table}'`;
    case 'grouped-conv':
      return `${r.node} is a grouped convolution (group=${r.group}, ${r.perGroup} input channels per group); pruning it would break the grouping`;
    case 'shape-arithmetic':
      return `${r.node} (${r.op}) ${r.detail}`;
    case 'not-constant':
      return `${r.node} reads '${r.tensor}', which is not a float constant`;
    case 'shared-constant':
      return `'${r.tensor}' is also read by ${r.reader} (${r.op})`;
    case 'unsupported':
      return `${r.node} (${r.op}) ${r.detail}`;
  }
}

/** What the user can do about it. */
export function skipHint(r: SkipReason): string {
  switch (r.kind) {
    case 'graph-output':
      return 'the output width is the model\'s interface and stays';
    case 'graph-input':
      return 'the input width is the caller\'s and stays';
    case 'normalization':
      return 'the layers that feed and read it are pruned instead where they can be (in a transformer: the attention heads and FFN channels of every block); a narrower width needs a narrower model trained or distilled';
    case 'protected':
      return 'drop the flag that protects it to let it be pruned';
    case 'embedding':
      return 'embedding tables keep their width by design; the layers after them are pruned';
    case 'grouped-conv':
      return 'a depthwise (group = channels) or ungrouped convolution is followed';
    case 'shape-arithmetic':
      return 'export with static shapes or constant-fold the shape computation (e.g. onnxsim) so the count is a constant';
    case 'not-constant':
      return 'export with constant folding so weights are stored as initializers';
    case 'shared-constant':
      return 'export without weight sharing between these layers (or untie them) to prune them';
    case 'unsupported':
      return 'the rest of the model is still pruned; --exclude the group\'s layers to silence this note';
  }
}

/** One line for notes and the ledger: what happened, then what to do. */
export function renderSkip(r: SkipReason): string {
  return `${skipText(r)}; ${skipHint(r)}`;
}
