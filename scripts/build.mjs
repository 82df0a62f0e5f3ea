// Bundle src/ into dist/ with esbuild. onnxruntime-node loads its native binding through a path built at
// run time, which no bundler follows: rewrite that one require to dist/ort/ and copy the linux-x64 CPU
// binding and library there, so dist/ runs with no node_modules (air-gapped self-hosted runners).
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// `node scripts/build.mjs [outdir]`: the staleness test builds into a temp folder and compares
const dist = path.resolve(process.argv[2] ?? path.join(root, 'dist'));
const ortNative = path.join(root, 'node_modules/onnxruntime-node/bin/napi-v6/linux/x64');
const NATIVE_FILES = ['onnxruntime_binding.node', 'libonnxruntime.so.1'];

const ortBindingPlugin = {
  name: 'onnxruntime-binding',
  setup(build) {
    build.onLoad({ filter: /onnxruntime-node[\\/]dist[\\/]binding\.js$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, 'utf8');
      const pattern = /require\(`\.\.\/bin\/napi-v6\/\$\{process\.platform\}\/\$\{process\.arch\}\/onnxruntime_binding\.node`\)/;
      if (!pattern.test(source)) throw new Error('onnxruntime-node binding.js changed: update scripts/build.mjs');
      const contents = source.replace(pattern, 'require(globalThis.__pruneGuardOrtBinding())');
      return { contents, loader: 'js' };
    });
  },
};

// The banner gives bundled CommonJS code `require` and `__dirname`, and picks the native binding:
// a platform we ship in dist/ort, else an error that says what to do.
const banner = `import { createRequire as __pgCreateRequire } from 'node:module';
import { fileURLToPath as __pgFileURLToPath } from 'node:url';
import { dirname as __pgDirname, join as __pgJoin } from 'node:path';
const require = __pgCreateRequire(import.meta.url);
const __filename = __pgFileURLToPath(import.meta.url);
const __dirname = __pgDirname(__filename);
import { existsSync as __pgExists } from 'node:fs';
globalThis.__pruneGuardOrtBinding = () => {
  // a user's onnxruntime-node (another platform, a GPU build) replaces the bundled binding everywhere
  const custom = process.env.PRUNE_GUARD_ONNXRUNTIME_PATH;
  if (custom) {
    const binding = __pgJoin(custom, 'bin', 'napi-v6', process.platform, process.arch, 'onnxruntime_binding.node');
    if (!__pgExists(binding)) throw new Error('PRUNE_GUARD_ONNXRUNTIME_PATH=' + custom + ': no onnxruntime-node binding for ' + process.platform + '-' + process.arch + ' at ' + binding + '; point it at an installed onnxruntime-node package folder');
    return binding;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error('prune-guard dist/ ships onnxruntime for linux-x64 only; on ' + process.platform + '-' + process.arch + ' set PRUNE_GUARD_ONNXRUNTIME_PATH to an installed onnxruntime-node');
  }
  return __pgJoin(__dirname, 'ort', 'onnxruntime_binding.node');
};`;

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  banner: { js: banner },
  plugins: [ortBindingPlugin],
  legalComments: 'none',
  logLevel: 'warning',
  // deterministic output: dist/ staleness is checked by rebuilding and comparing
  sourcemap: false,
};

fs.mkdirSync(path.join(dist, 'ort'), { recursive: true });
await esbuild.build({ ...common, entryPoints: { cli: path.join(root, 'src/bin.ts'), index: path.join(root, 'src/main.ts') }, outdir: dist, splitting: false });
for (const f of NATIVE_FILES) {
  const from = path.join(ortNative, f);
  const to = path.join(dist, 'ort', f);
  const same = fs.existsSync(to) && fs.statSync(to).size === fs.statSync(from).size && fs.readFileSync(to).equals(fs.readFileSync(from));
  if (!same) fs.copyFileSync(from, to);
}
fs.writeFileSync(path.join(dist, 'package.json'), JSON.stringify({ type: 'module' }) + '\n');
