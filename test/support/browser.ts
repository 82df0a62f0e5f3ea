/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import * as fs from 'node:fs';
import * as path from 'node:path';
import { marked } from 'marked';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './fixtures.js';

/**
 * A pull-request comment as a reviewer sees it: GitHub-flavoured markdown rendered by `marked`, styled
 * by `github-markdown-css`, Mermaid blocks drawn by `mermaid`, all loaded from node_modules into
 * Debian's Chromium with every network request refused.
 */

export const CHROMIUM = process.env.PRUNE_GUARD_CHROMIUM || '/usr/bin/chromium';
/** Width of GitHub's comment box on a pull request's conversation page. */
export const COMMENT_WIDTH = 870;
/** How much of the comment a reviewer sees before scrolling. */
export const FIRST_SCREEN = 900;

export async function launchChromium(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: the comment is checked in a real browser. Install Debian's chromium and fonts ` +
        '(apt-get install -y chromium fonts-liberation fonts-noto-color-emoji, as .ci/run does) or set PRUNE_GUARD_CHROMIUM to a Chromium binary.',
    );
  }
  // root in a container has no user namespace for Chromium's sandbox; the page is our own markdown
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--font-render-hinting=none'] });
}

const CSS = fs.readFileSync(path.join(ROOT, 'node_modules/github-markdown-css/github-markdown-light.css'), 'utf8');
const MERMAID = path.join(ROOT, 'node_modules/mermaid/dist/mermaid.min.js');

function pageHtml(markdown: string): string {
  const body = marked.parse(markdown, { gfm: true, async: false });
  return `<!doctype html><html><head><meta charset="utf-8"><style>${CSS}</style>
<style>body { margin: 0; background: #fff; } #comment { width: ${COMMENT_WIDTH}px; box-sizing: border-box; padding: 16px; border: 1px solid #d0d7de; border-radius: 6px; }</style>
</head><body><div id="comment" class="markdown-body">${body}</div></body></html>`;
}

export interface Overflow {
  what: string;
  scrollWidth: number;
  clientWidth: number;
}

/** A page holding one rendered comment; every request beyond the page itself is refused. */
export async function openComment(browser: Browser, markdown: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: COMMENT_WIDTH + 40, height: FIRST_SCREEN }, deviceScaleFactor: 1 });
  await page.route('**/*', (route) => route.abort());
  await page.setContent(pageHtml(markdown), { waitUntil: 'load' });
  await page.addScriptTag({ path: MERMAID });
  return page;
}

/** Elements wider than the comment box, and scroll containers (GitHub's tables, code blocks) hiding content. */
export function overflows(page: Page): Promise<Overflow[]> {
  return page.evaluate(() => {
    const box = document.getElementById('comment')!;
    const right = box.getBoundingClientRect().right;
    const out: { what: string; scrollWidth: number; clientWidth: number }[] = [];
    const name = (e: Element) => `${e.tagName.toLowerCase()}: ${(e.textContent ?? '').trim().slice(0, 60)}`;
    if (box.scrollWidth > box.clientWidth) out.push({ what: 'the comment', scrollWidth: box.scrollWidth, clientWidth: box.clientWidth });
    for (const e of box.querySelectorAll('*')) {
      const r = e.getBoundingClientRect();
      if (!e.checkVisibility() || (r.width === 0 && r.height === 0)) continue;
      if (r.right > right + 0.5) out.push({ what: name(e), scrollWidth: Math.round(r.right), clientWidth: Math.round(right) });
      if ((e.tagName === 'TABLE' || e.tagName === 'PRE') && e.scrollWidth > e.clientWidth) out.push({ what: name(e), scrollWidth: e.scrollWidth, clientWidth: e.clientWidth });
    }
    return out;
  });
}

export interface MermaidResult {
  source: string;
  ok: boolean;
  error?: string;
  svgWidth?: number;
}

/** Opens every fold and draws every Mermaid block where GitHub would, reporting what failed to parse or render. */
export function renderMermaid(page: Page): Promise<MermaidResult[]> {
  return page.evaluate(async () => {
    for (const d of document.querySelectorAll('details')) d.open = true;
    const m = (window as unknown as { mermaid: { initialize(c: object): void; parse(t: string): Promise<unknown>; render(id: string, t: string): Promise<{ svg: string }> } }).mermaid;
    m.initialize({ startOnLoad: false, securityLevel: 'strict', theme: 'default' });
    const results: { source: string; ok: boolean; error?: string; svgWidth?: number }[] = [];
    const blocks = [...document.querySelectorAll('pre > code.language-mermaid')];
    for (const [i, code] of blocks.entries()) {
      const source = code.textContent ?? '';
      try {
        await m.parse(source);
        const { svg } = await m.render(`mermaid-${i}`, source);
        const holder = document.createElement('div');
        holder.className = 'mermaid-chart';
        holder.innerHTML = svg;
        code.parentElement!.replaceWith(holder);
        const drawn = holder.querySelector('svg');
        results.push({ source, ok: !!drawn && drawn.getBoundingClientRect().width > 0, svgWidth: drawn?.getBoundingClientRect().width });
      } catch (e) {
        results.push({ source, ok: false, error: String(e) });
      }
    }
    return results;
  });
}

export function closeFolds(page: Page): Promise<void> {
  return page.evaluate(() => {
    for (const d of document.querySelectorAll('details')) d.open = false;
  });
}

/** What a reviewer sees before opening anything: the elements before the first fold. */
export interface FirstScreen {
  /** page y of the first `<details>`, or the comment's height without one */
  foldTop: number;
  /** text above the first fold, non-breaking spaces as spaces */
  text: string;
  /** per table above the fold: its column count and, per column, whether any body cell says something */
  tables: { columns: number; emptyColumns: string[]; wrapped: string[] }[];
}

export function firstScreen(page: Page): Promise<FirstScreen> {
  return page.evaluate(() => {
    const box = document.getElementById('comment')!;
    const before: Element[] = [];
    for (const e of box.children) {
      if (e.tagName === 'DETAILS') break;
      before.push(e);
    }
    const fold = box.querySelector(':scope > details');
    const norm = (t: string) => t.replace(/\u00a0/g, ' ').replace(/\u2011/g, '-');
    const tables = before
      .flatMap((e) => (e.tagName === 'TABLE' ? [e] : [...e.querySelectorAll('table')]))
      .map((t) => {
        const head = [...t.querySelectorAll('thead th')].map((th) => (th.textContent ?? '').trim());
        const rows = [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((td) => (td.textContent ?? '').trim()));
        const emptyColumns = head.filter((_, j) => rows.every((r) => ['', '—', 'not available'].includes(r[j] ?? '')));
        // a budget name or limit broken over two lines cannot be read at a glance
        // (a model's path may wrap after a folder: only names without one are held to a single line)
        const lines = (e: Element) => {
          const range = document.createRange();
          range.selectNodeContents(e);
          return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
        };
        const names = [...t.querySelectorAll('code')].filter((c) => !(c.textContent ?? '').includes('/'));
        const limits = [...t.querySelectorAll('td')].filter((c) => /^[≤≥]/.test((c.textContent ?? '').trim()));
        const wrapped = [...names, ...limits].filter((c) => lines(c) > 1).map((c) => c.textContent ?? '');
        return { columns: head.length, emptyColumns, wrapped };
      });
    return {
      foldTop: fold ? fold.getBoundingClientRect().top + window.scrollY : box.getBoundingClientRect().bottom + window.scrollY,
      text: norm(before.map((e) => (e as HTMLElement).innerText).join('\n')),
      tables,
    };
  });
}

/**
 * The page y (bottom edge) of the first list item or table row above the fold whose text holds every one
 * of `parts`, or null when none does: where a reviewer finds a budget's name, limit and value together.
 */
export function whereShown(page: Page, parts: readonly string[]): Promise<number | null> {
  return page.evaluate((want) => {
    const box = document.getElementById('comment')!;
    const fold = box.querySelector(':scope > details');
    for (const e of box.querySelectorAll('li, tr')) {
      if (fold && e.compareDocumentPosition(fold) & Node.DOCUMENT_POSITION_PRECEDING) continue;
      const text = (e as HTMLElement).innerText.replace(/\u00a0/g, ' ').replace(/\u2011/g, '-');
      if (want.every((p) => text.includes(p))) return e.getBoundingClientRect().bottom + window.scrollY;
    }
    return null;
  }, parts);
}
