import type { getOctokit } from '@actions/github';

export type Octokit = ReturnType<typeof getOctokit>;

/** Where the action runs: the parts of @actions/github's context it needs, so tests can build one. */
export interface RunContext {
  eventName: string;
  payload: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- webhook payloads are untyped JSON
  repo: { owner: string; repo: string };
  sha: string;
  runId: number;
  serverUrl: string;
  workflow?: string;
}

/** HTTP status of an Octokit RequestError, undefined for anything else. */
export function httpStatus(e: unknown): number | undefined {
  const status = (e as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/** A missing permission: a read-only token (fork pull requests) or a `permissions:` block without it. */
export function isForbidden(e: unknown): boolean {
  const s = httpStatus(e);
  return s === 403 || s === 401;
}
