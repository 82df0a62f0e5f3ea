import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ApiCall {
  method: string;
  /** path without the query string */
  path: string;
  query: Record<string, string>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- request JSON as sent
}

export interface PrFile {
  filename: string;
  status: string;
  previous_filename?: string;
}

export interface FakeState {
  owner: string;
  repo: string;
  pull: number;
  /** PR files, served in pages of `pageSize` with Link headers */
  files: PrFile[];
  pageSize: number;
  comments: { id: number; body: string; html_url: string }[];
  issues: { number: number; body: string; labels: string[]; html_url: string }[];
  forbid: Set<'comment' | 'checks' | 'statuses' | 'issues' | 'contents'>;
  contents: Map<string, { content: string; sha: string }>;
  branches: Set<string>;
}

/**
 * A GitHub REST API on 127.0.0.1 that records every call and keeps just enough state (comments, issues,
 * a contents store) for the action's calls; anything else is a 404 so an unexpected call shows up.
 */
export async function startFakeGitHub(init: Partial<FakeState> = {}): Promise<{ url: string; calls: ApiCall[]; state: FakeState; close(): Promise<void> }> {
  const state: FakeState = {
    owner: 'octo',
    repo: 'models',
    pull: 7,
    files: [],
    pageSize: 100,
    comments: [],
    issues: [],
    forbid: new Set(),
    contents: new Map(),
    branches: new Set(),
    ...init,
  };
  const calls: ApiCall[] = [];
  let nextId = 1000;
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const call: ApiCall = { method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), query: Object.fromEntries(url.searchParams), body: raw ? JSON.parse(raw) : undefined };
      calls.push(call);
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(JSON.stringify(body));
      };
      const forbidden = () => send(403, { message: 'Resource not accessible by integration', status: '403' });
      const repoPath = `/repos/${state.owner}/${state.repo}`;
      const p = call.path;
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      if (call.method === 'GET' && p === `${repoPath}/pulls/${state.pull}/files`) {
        const page = Number(url.searchParams.get('page') ?? 1);
        const pages = Math.max(1, Math.ceil(state.files.length / state.pageSize));
        const items = state.files.slice((page - 1) * state.pageSize, page * state.pageSize);
        const link = (n: number, rel: string) => `<${base}${p}?per_page=${state.pageSize}&page=${n}>; rel="${rel}"`;
        const links = [page < pages ? link(page + 1, 'next') : '', link(pages, 'last')].filter(Boolean).join(', ');
        return send(200, items, pages > 1 ? { link: links } : {});
      }
      if (call.method === 'GET' && p === `${repoPath}/issues/${state.pull}/comments`) return send(200, state.comments);
      if (call.method === 'POST' && p === `${repoPath}/issues/${state.pull}/comments`) {
        if (state.forbid.has('comment')) return forbidden();
        const c = { id: nextId++, body: call.body.body, html_url: `https://github.test/${state.owner}/${state.repo}/pull/${state.pull}#issuecomment-${nextId}` };
        state.comments.push(c);
        return send(201, c);
      }
      const update = /^\/repos\/[^/]+\/[^/]+\/issues\/comments\/(\d+)$/.exec(p);
      if (call.method === 'PATCH' && update) {
        const c = state.comments.find((x) => x.id === Number(update[1]));
        if (!c) return send(404, { message: 'Not Found' });
        c.body = call.body.body;
        return send(200, c);
      }
      if (call.method === 'POST' && p === `${repoPath}/check-runs`) {
        if (state.forbid.has('checks')) return forbidden();
        return send(201, { id: nextId++, ...call.body });
      }
      if (call.method === 'POST' && p.startsWith(`${repoPath}/statuses/`)) {
        if (state.forbid.has('statuses')) return forbidden();
        return send(201, { id: nextId++, ...call.body });
      }
      if (call.method === 'GET' && p === `${repoPath}/issues`) return send(200, state.issues.filter((i) => !call.query.labels || i.labels.includes(call.query.labels)));
      if (call.method === 'POST' && p === `${repoPath}/issues`) {
        if (state.forbid.has('issues')) return forbidden();
        const n = nextId++;
        const issue = { number: n, body: call.body.body, labels: call.body.labels ?? [], html_url: `https://github.test/${state.owner}/${state.repo}/issues/${n}` };
        state.issues.push(issue);
        return send(201, issue);
      }
      const issueUpdate = /^\/repos\/[^/]+\/[^/]+\/issues\/(\d+)$/.exec(p);
      if (call.method === 'PATCH' && issueUpdate) {
        const issue = state.issues.find((i) => i.number === Number(issueUpdate[1]));
        if (!issue) return send(404, { message: 'Not Found' });
        issue.body = call.body.body;
        return send(200, issue);
      }
      const ref = /^\/repos\/[^/]+\/[^/]+\/git\/ref\/heads\/(.+)$/.exec(p);
      if (call.method === 'GET' && ref) return state.branches.has(ref[1]) ? send(200, { ref: `refs/heads/${ref[1]}` }) : send(404, { message: 'Not Found' });
      if (call.method === 'POST' && p === `${repoPath}/git/refs`) {
        if (state.forbid.has('contents')) return forbidden();
        state.branches.add(String(call.body.ref).replace('refs/heads/', ''));
        return send(201, { ref: call.body.ref });
      }
      const contents = /^\/repos\/[^/]+\/[^/]+\/contents\/(.+)$/.exec(p);
      if (contents) {
        const key = `${call.method === 'GET' ? call.query.ref : call.body?.branch}:${decodeURIComponent(contents[1])}`;
        if (call.method === 'GET') {
          const f = state.contents.get(key);
          return f ? send(200, { type: 'file', sha: f.sha, content: f.content, encoding: 'base64' }) : send(404, { message: 'Not Found' });
        }
        if (call.method === 'PUT') {
          if (state.forbid.has('contents')) return forbidden();
          const sha = `blob${nextId++}`;
          state.contents.set(key, { content: call.body.content, sha });
          return send(200, { content: { sha } });
        }
      }
      send(404, { message: 'Not Found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    state,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** `METHOD /path` of each call, the form the tests compare against. */
export const route = (c: ApiCall): string => `${c.method} ${c.path}${c.query.page ? `?page=${c.query.page}` : ''}`;
