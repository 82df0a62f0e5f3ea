import { describe, expect, it } from 'vitest';
import { renderHeadline, renderMarkdown } from '../../src/ledger/render.js';
import { escapeHtml, escapeMarkdown, htmlText, markdownCell, markdownCode } from '../../src/util/escape.js';
import { sampleLedger, sampleModel } from '../ledger/fixtures.js';

const HOSTILE = [
  'evil\nmodel.onnx',
  'a|b|c.onnx',
  'x`y``z.onnx',
  '<script>alert(1)</script>.onnx',
  '@octocat please.onnx',
  '[click](javascript:alert(1)).onnx',
  '**bold** _it_ # h.onnx',
];

describe('untrusted text in Markdown', () => {
  it('escaped text keeps one line and renders as the literal characters', () => {
    for (const name of HOSTILE) {
      const md = escapeMarkdown(name);
      expect(md).not.toMatch(/[\r\n]/);
      expect(md).not.toMatch(/<script/);
      expect(md).not.toMatch(/@octocat/);
    }
    expect(escapeMarkdown('[click](javascript:alert(1))')).toBe('\\[click\\]\\(javascript:alert\\(1\\)\\)');
    expect(escapeMarkdown('<b>&')).toBe('&#60;b&#62;&#38;');
    expect(escapeMarkdown('@team')).toBe('@\u200dteam');
  });

  it('inline code survives backticks, pipes and newlines', () => {
    expect(markdownCode('a`b')).toBe('``a`b``');
    expect(markdownCode('`x`')).toBe('`` `x` ``');
    expect(markdownCode('a|b\nc')).toBe('`a\\|b c`');
  });

  it('cells and HTML', () => {
    expect(markdownCell('a|b\r\nc')).toBe('a\\|b c');
    expect(escapeHtml(`<a href="x">'`)).toBe('&#60;a href=&#34;x&#34;&#62;&#39;');
    // inside an HTML block: no backslashes (they would show), links and mentions as references
    expect(htmlText('[x](javascript:y)\n@team <b>')).toBe('&#91;x&#93;&#40;javascript:y&#41; &#64;team &#60;b&#62;');
  });
});

describe('a ledger naming hostile files renders them inert', () => {
  for (const name of HOSTILE) {
    it(JSON.stringify(name), () => {
      const model = sampleModel({ model: `models/${name}`, pruned: `out/${name}` });
      const ledger = { ...sampleLedger(), models: [model] };
      const md = renderMarkdown(ledger);
      // no link a name could open: every ']' before '(' from a name is escaped or inside a code span
      expect(md.replace(/`[^`]*`/g, '')).not.toMatch(/[^\\]\]\(javascript/);
      // the line naming the files is still one line: a newline in a name did not split it
      expect(md.split('\n').filter((l) => l.includes('eval on'))).toHaveLength(1);
      // inside code spans nothing is HTML or a mention; outside them it must be escaped
      const prose = md.replace(/(`+)[^`][\s\S]*?\1/g, '');
      expect(prose).not.toContain('<script>');
      expect(prose).not.toMatch(/@octocat/);
      const headline = renderHeadline(model);
      expect(headline.split('\n')).toHaveLength(1);
    });
  }
});
