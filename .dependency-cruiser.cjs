/**
 * The layers of src/, lowest first. A module may import from its own layer or a lower one, never a
 * higher one, so data flows one way: config -> onnx/data -> prune -> recover -> quantize -> measure -> ledger ->
 * pipeline -> entry points. `npm test` checks this (test/layers.test.ts); `npm run layers` prints the
 * same report on its own.
 */
const LAYERS = [
  { name: 'base', path: '^src/(errors|version)\\.ts$|^src/(io|util)/' },
  { name: 'config', path: '^src/config/' },
  { name: 'onnx-data', path: '^src/(onnx|data)/' },
  { name: 'prune', path: '^src/prune/' },
  { name: 'recover', path: '^src/recover/' },
  { name: 'quantize', path: '^src/quantize/' },
  { name: 'measure', path: '^src/measure/' },
  { name: 'ledger', path: '^src/ledger/' },
  { name: 'pipeline', path: '^src/pipeline/' },
  { name: 'entry', path: '^src/(cli|main|bin)\\.ts$|^src/github/' },
];

const any = (layers) => layers.map((l) => `(${l.path})`).join('|');

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `${layer.name}-imports-upward`,
  comment: `${layer.name} (${layer.path}) may import only ${LAYERS.slice(0, i + 1).map((l) => l.name).join(', ')}: move the shared code down instead`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: any(LAYERS.slice(i + 1)) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'outside-the-layers',
      comment: 'every module under src/ belongs to a layer: add its folder to LAYERS in .dependency-cruiser.cjs',
      severity: 'error',
      from: { path: '^src/', pathNot: any(LAYERS) },
      to: {},
    },
    {
      name: 'unresolvable',
      comment: 'an import the check cannot resolve is an import it cannot judge',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      comment: 'modules that import each other cannot be layered or understood one at a time',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // type-only imports count: a lower layer naming a higher layer's type depends on it all the same
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs'], conditionNames: ['import', 'require', 'node', 'default'], exportsFields: ['exports'] },
  },
};
