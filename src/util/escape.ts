/**
 * Text from a pull request (file names, tensor and node names, config strings) made inert for each place
 * it is shown. A pull request chooses its file names, so a name may hold a newline that ends a table row,
 * a `|` that opens a cell, backticks, `<script>`, an `@mention` that pings someone, or a
 * `[x](javascript:...)` link. Every renderer goes through these functions and writes no untrusted text
 * any other way.
 */

// line and paragraph separators too: GitHub's renderer breaks lines on them
const LINE_BREAKS = /[\r\n\u2028\u2029\u0085]+/g;
// control characters other than tab; they have no place in a name and some terminals act on them
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

function oneLine(text: string): string {
  return text.replace(LINE_BREAKS, ' ').replace(CONTROLS, '');
}

/** Characters HTML gives meaning to, as entities: safe in HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Text on one line inside an HTML block (a fold's `<summary>`), where Markdown is not parsed and a
 * backslash would show: HTML's characters, and those a link or an `@mention` is made of, as character
 * references, so the text reads literally and opens or pings nothing.
 */
export function htmlText(text: string): string {
  return oneLine(text).replace(/[&<>"'[\]()@]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Plain Markdown text on one line, written mid-line: the punctuation that opens emphasis, code, links,
 * images, headings or table cells is backslash-escaped (CommonMark: escaped punctuation is literal), HTML is written as entities, and `@` is followed
 * by a zero-width joiner so a name never mentions a user or team.
 */
export function escapeMarkdown(text: string): string {
  return oneLine(text)
    .replace(/[\\`*_{}[\]()#+!|~]/g, (c) => `\\${c}`)
    .replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/@/g, '@\u200d');
}

/**
 * Inline code on one line. A code span cannot escape a backtick, so it is fenced with one more backtick
 * than the longest run inside it, padded with spaces when it starts or ends with one; nothing inside a
 * code span is a link, a mention or HTML. Table pipes must still be escaped (GFM splits cells first).
 */
export function markdownCode(text: string): string {
  const line = oneLine(text).replace(/\|/g, '\\|');
  const longest = Math.max(0, ...(line.match(/`+/g) ?? []).map((r) => r.length));
  const fence = '`'.repeat(longest + 1);
  const pad = line.startsWith('`') || line.endsWith('`') || line === '' ? ' ' : '';
  return `${fence}${pad}${line}${pad}${fence}`;
}

/** A Markdown table cell holding text prune-guard wrote itself: kept on one line, `|` cannot open a cell. */
export function markdownCell(text: string): string {
  return oneLine(text).replace(/\|/g, '\\|');
}
