import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { writeNpz } from '../data/npz.js';
import { UserError } from '../errors.js';
import { onInterrupt } from '../io/cleanup.js';
import { GraphIndex } from '../onnx/graph.js';
import { loadModel } from '../onnx/model.js';
import type { ModelProto } from '../onnx/proto/onnx_pb.js';
import { tensorDims, tensorToFloat32 } from '../onnx/tensor.js';

/** Keep-masks (1 = weight may be nonzero) of the given initializers, from the pruned model's zeros. */
export function masksFromZeros(model: ModelProto, weights: readonly string[]): Map<string, { dims: number[]; keep: Uint8Array }> {
  const index = new GraphIndex(model.graph!);
  const out = new Map<string, { dims: number[]; keep: Uint8Array }>();
  for (const name of weights) {
    const t = index.initializers.get(name);
    if (!t) continue;
    const v = tensorToFloat32(t);
    out.set(name, { dims: tensorDims(t), keep: Uint8Array.from(v, (x) => (x !== 0 ? 1 : 0)) });
  }
  return out;
}

export function writeMasks(file: string, masks: Map<string, { dims: number[]; keep: Uint8Array }>): void {
  writeNpz(file, Object.fromEntries([...masks].map(([name, m]) => [name, { dtype: 'uint8' as const, shape: m.dims, data: m.keep }])), { compress: true });
}

export interface ExternalPaths {
  modelIn: string;
  modelOut: string;
  masks: string;
  calib?: string;
  data: string;
}

/** The environment the command sees; documented in the README. */
export function externalEnv(p: ExternalPaths): Record<string, string> {
  return {
    PRUNE_GUARD_MODEL_IN: p.modelIn,
    PRUNE_GUARD_MODEL_OUT: p.modelOut,
    PRUNE_GUARD_MASKS: p.masks,
    PRUNE_GUARD_CALIB: p.calib ?? '',
    PRUNE_GUARD_DATA: p.data,
  };
}

/** The step's environment minus the action's inputs: `INPUT_GITHUB-TOKEN` must not reach a pull request's command. */
export function commandEnv(base: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !/^INPUT_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** The command outlived the time it was given and was stopped with its whole process group. */
export class CommandTimedOut extends Error {
  override readonly name = 'CommandTimedOut';
  constructor(readonly seconds: number) {
    super(`the recovery command was stopped after ${seconds.toFixed(1)} s, at the time budget`);
  }
}

// a command that ignores SIGTERM gets this long to exit before SIGKILL
const KILL_GRACE_MS = 2000;

/**
 * Run the user's recovery command in a shell, in its own process group, so stopping it stops everything
 * it started (a training script's workers, a `sleep`): at `timeoutSeconds`, and when prune-guard itself is
 * told to stop (SIGTERM/SIGINT), the group gets SIGTERM, then SIGKILL. Its stdout and stderr go to
 * `output` (prune-guard's stderr in the CLI), so the ledger printed on stdout stays clean for CI logs and pipes.
 */
export function runCommand(command: string, env: Record<string, string>, output: (text: string) => void, opts: { timeoutSeconds?: number } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, { shell: true, detached: true, env: commandEnv(process.env, env), stdio: ['ignore', 'pipe', 'pipe'] });
    const killGroup = (signal: NodeJS.Signals) => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
      } catch {
        // the group is already gone
      }
    };
    const unregister = onInterrupt(() => killGroup('SIGKILL'));
    let timedOut = false;
    let grace: NodeJS.Timeout | undefined;
    const timer =
      opts.timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            killGroup('SIGTERM');
            grace = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
          }, opts.timeoutSeconds * 1000);
    // utf8 decoding keeps a character split across two chunks whole
    child.stdout.setEncoding('utf8').on('data', output);
    child.stderr.setEncoding('utf8').on('data', output);
    child.on('error', (e) => reject(new UserError(`--recovery-command: cannot start '${command}' (${e.message})`)));
    child.on('exit', () => {
      // the shell is gone; whatever it left running in its group goes with it
      killGroup('SIGKILL');
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(grace);
      unregister();
      if (timedOut) reject(new CommandTimedOut((performance.now() - started) / 1000));
      else if (code === 0) resolve();
      else reject(new UserError(`--recovery-command: '${command}' ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; its output is above, fix the command and rerun`));
    });
  });
}

/**
 * What a recovery command may change: weight values only. The op graph, every initializer's name
 * and shape, and the sparsity pattern must be as prune-guard wrote them, or the ledger would credit
 * pruning with a model the command re-densified or re-shaped.
 */
export function verifyRecovered(before: ModelProto, after: ModelProto, masks: Map<string, { dims: number[]; keep: Uint8Array }>, file: string): void {
  const fail = (what: string): never => {
    throw new UserError(`--recovery-command: ${file} ${what}; a recovery command may only change weight values, keeping every pruned weight at zero`);
  };
  const a = before.graph!;
  const b = after.graph!;
  const ops = (g: typeof a) => g.node.map((n) => `${n.opType}(${n.input.join(',')})->${n.output.join(',')}`);
  const [opsA, opsB] = [ops(a), ops(b)];
  if (opsA.length !== opsB.length) fail(`has ${opsB.length} nodes, the pruned model ${opsA.length}`);
  const diff = opsA.findIndex((o, i) => o !== opsB[i]);
  if (diff >= 0) fail(`changed the op graph at node ${diff}: '${opsA[diff]}' became '${opsB[diff]}'`);
  const names = (l: { name: string }[]) => l.map((x) => x.name).join(',');
  if (names(a.input) !== names(b.input) || names(a.output) !== names(b.output)) fail('changed the graph inputs or outputs');
  const inits = new GraphIndex(b).initializers;
  for (const t of a.initializer) {
    const u = inits.get(t.name);
    if (!u) fail(`lost initializer '${t.name}'`);
    if (tensorDims(u!).join('x') !== tensorDims(t).join('x')) fail(`changed the shape of '${t.name}' from [${tensorDims(t)}] to [${tensorDims(u!)}]`);
  }
  if (b.initializer.length !== a.initializer.length) fail(`has ${b.initializer.length} initializers, the pruned model ${a.initializer.length}`);
  for (const [name, m] of masks) {
    const v = tensorToFloat32(inits.get(name)!);
    let revived = 0;
    for (let i = 0; i < v.length; i++) if (!m.keep[i] && v[i] !== 0) revived++;
    if (revived > 0) fail(`made ${revived} pruned weights of '${name}' nonzero again (the mask is in $PRUNE_GUARD_MASKS)`);
  }
}

/** The whole external step: masks out, command run, model back in and verified. */
export async function externalRecovery(command: string, pruned: ModelProto, weights: readonly string[], paths: ExternalPaths, output: (text: string) => void, opts: { timeoutSeconds?: number } = {}): Promise<ModelProto> {
  const masks = masksFromZeros(pruned, weights);
  writeMasks(paths.masks, masks);
  fs.rmSync(paths.modelOut, { force: true });
  await runCommand(command, externalEnv(paths), output, opts);
  if (!fs.existsSync(paths.modelOut)) {
    throw new UserError(`--recovery-command: the command succeeded but wrote no model at $PRUNE_GUARD_MODEL_OUT (${paths.modelOut}); save the recovered .onnx there`);
  }
  const recovered = loadModel(paths.modelOut).proto;
  verifyRecovered(pruned, recovered, masks, paths.modelOut);
  return recovered;
}
