import { MARKER } from './report.js';
import type { Octokit, RunContext } from './octokit.js';

export interface CommentResult {
  url: string;
  action: 'created' | 'updated';
}

/**
 * Creates prune-guard's one comment on the pull request, or updates it in place when a comment with the
 * marker already exists, so every push refreshes the same comment instead of adding one. With
 * `create: false` only an existing comment is updated.
 */
export async function upsertStickyComment(octokit: Octokit, ctx: RunContext, issueNumber: number, body: string, opts: { create: boolean }): Promise<CommentResult | undefined> {
  const { owner, repo } = ctx.repo;
  const comments = await octokit.paginate(octokit.rest.issues.listComments, { owner, repo, issue_number: issueNumber, per_page: 100 });
  const mine = comments.find((c) => c.body?.includes(MARKER));
  if (mine) {
    const { data } = await octokit.rest.issues.updateComment({ owner, repo, comment_id: mine.id, body });
    return { url: data.html_url, action: 'updated' };
  }
  if (!opts.create) return undefined;
  const { data } = await octokit.rest.issues.createComment({ owner, repo, issue_number: issueNumber, body });
  return { url: data.html_url, action: 'created' };
}

