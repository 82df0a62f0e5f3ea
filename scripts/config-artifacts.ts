// Writes what is derived from the config's one declaration (src/config/schema.ts) into the files that
// publish it: schema/config.schema.json, and the description and default of every action.yml input that
// sets a setting. test/config/derived.test.ts fails while either is out of date; `npm run gen:config`
// brings both up to date.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument, Scalar } from 'yaml';
import { configJsonSchema } from '../src/config/schema.js';
import { CONFIG_INPUTS } from '../src/config/sources.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SCHEMA_FILE = path.join(root, 'schema/config.schema.json');
export const ACTION_FILE = path.join(root, 'action.yml');

export function configSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

/** action.yml with every config-backed input described from its setting and defaulting to the config file (''). */
export function actionYmlText(current: string): string {
  const doc = parseDocument(current);
  for (const { input, description } of CONFIG_INPUTS) {
    const text = new Scalar(description);
    // plain when YAML allows it, as the rest of the file is written
    text.type = /: |#|^[\s"'&*!|>%@`{[]/.test(description) ? Scalar.QUOTE_DOUBLE : Scalar.PLAIN;
    doc.setIn(['inputs', input, 'description'], text);
    const empty = new Scalar('');
    empty.type = Scalar.QUOTE_SINGLE;
    doc.setIn(['inputs', input, 'default'], empty);
  }
  return doc.toString({ lineWidth: 0 });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(SCHEMA_FILE, configSchemaText());
  fs.writeFileSync(ACTION_FILE, actionYmlText(fs.readFileSync(ACTION_FILE, 'utf8')));
  console.log(`wrote ${path.relative(root, SCHEMA_FILE)} and ${path.relative(root, ACTION_FILE)}`);
}
