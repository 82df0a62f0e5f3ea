import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { cruise, type ICruiseResult, type IConfiguration } from 'dependency-cruiser';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, tempDir } from './support/fixtures.js';

const config = createRequire(import.meta.url)(path.join(ROOT, '.dependency-cruiser.cjs')) as IConfiguration;
const TSCONFIG = path.join(ROOT, 'tsconfig.json');

/** The rule violations dependency-cruiser finds in `<baseDir>/src`, one line each, as `npm run layers` would report them. */
async function violations(baseDir: string): Promise<string[]> {
  const { output } = await cruise(
    ['src'],
    { ...config.options, tsConfig: { fileName: TSCONFIG }, baseDir, validate: true, ruleSet: { forbidden: config.forbidden } },
    {},
    { tsConfig: extractTSConfig(TSCONFIG) },
  );
  const result = output as ICruiseResult;
  return result.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`).sort();
}

const trees: string[] = [];
afterAll(() => {
  for (const t of trees) fs.rmSync(t, { recursive: true, force: true });
});

/** A throwaway source tree: each entry a file under src/ importing the listed files (a type import, as a lower layer naming a higher layer's record would). */
function sourceTree(files: Record<string, string[]>): string {
  const dir = tempDir('prune-guard-layers-');
  trees.push(dir);
  for (const [file, imports] of Object.entries(files)) {
    const at = path.join(dir, 'src', file);
    fs.mkdirSync(path.dirname(at), { recursive: true });
    const lines = imports.map((to, i) => {
      let spec = path.relative(path.dirname(file), to).replace(/\.ts$/, '.js');
      if (!spec.startsWith('.')) spec = `./${spec}`;
      return `import type { T as T${i} } from '${spec}';\nexport type U${i} = T${i};\n`;
    });
    fs.writeFileSync(at, `${lines.join('')}export type T = number;\n`);
  }
  return dir;
}

describe('layering check (.dependency-cruiser.cjs)', () => {
  it('finds no upward import, cycle or unplaced module in src/', async () => {
    expect(await violations(ROOT)).toEqual([]);
  });

  it('reports every layer importing the layer above it, and allows downward and same-layer imports', async () => {
    const tree = sourceTree({
      'errors.ts': ['config/a.ts'],
      'io/a.ts': ['config/a.ts'],
      'util/a.ts': ['io/b.ts'],
      'io/b.ts': [],
      'config/a.ts': ['onnx/a.ts'],
      'onnx/a.ts': ['prune/a.ts', 'data/a.ts'],
      'data/a.ts': ['prune/a.ts'],
      'prune/a.ts': ['recover/a.ts'],
      'recover/a.ts': ['measure/a.ts'],
      'measure/a.ts': ['ledger/a.ts'],
      'ledger/a.ts': ['pipeline/a.ts'],
      'pipeline/a.ts': ['github/a.ts'],
      'github/a.ts': ['cli.ts', 'pipeline/b.ts'],
      'cli.ts': ['pipeline/b.ts'],
      'pipeline/b.ts': ['measure/b.ts', 'util/b.ts'],
      'measure/b.ts': ['onnx/b.ts'],
      'onnx/b.ts': ['data/b.ts', 'config/b.ts'],
      'data/b.ts': [],
      'config/b.ts': ['version.ts', 'io/b.ts'],
      'version.ts': [],
      'util/b.ts': [],
    });
    expect(await violations(tree)).toEqual([
      'base-imports-upward: src/errors.ts -> src/config/a.ts',
      'base-imports-upward: src/io/a.ts -> src/config/a.ts',
      'config-imports-upward: src/config/a.ts -> src/onnx/a.ts',
      'ledger-imports-upward: src/ledger/a.ts -> src/pipeline/a.ts',
      'measure-imports-upward: src/measure/a.ts -> src/ledger/a.ts',
      'onnx-data-imports-upward: src/data/a.ts -> src/prune/a.ts',
      'onnx-data-imports-upward: src/onnx/a.ts -> src/prune/a.ts',
      'pipeline-imports-upward: src/pipeline/a.ts -> src/github/a.ts',
      'prune-imports-upward: src/prune/a.ts -> src/recover/a.ts',
      'recover-imports-upward: src/recover/a.ts -> src/measure/a.ts',
    ]);
  });

  it('reports a cycle, an import it cannot resolve and a module outside every layer', async () => {
    const tree = sourceTree({
      'measure/a.ts': ['measure/b.ts'],
      'measure/b.ts': ['measure/a.ts'],
      'prune/a.ts': ['prune/missing.ts'],
      'scratch.ts': ['prune/a.ts'],
    });
    const found = await violations(tree);
    // one report per cycle, from whichever module of it the cruise reached first
    expect(found.filter((v) => v.startsWith('no-circular:'))).toHaveLength(1);
    expect(found.filter((v) => !v.startsWith('no-circular:'))).toEqual([
      'outside-the-layers: src/scratch.ts -> src/prune/a.ts',
      'unresolvable: src/prune/a.ts -> ./missing.js',
    ]);
  });
});
