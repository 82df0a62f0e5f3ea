import type { ModelJob } from './checkModels.js';
import type { Octokit, RunContext } from './octokit.js';

/**
 * The pull request's added, modified and renamed models matching the globs, from the PR files API
 * (paginated: a large pull request spans many pages). Removed models have nothing to check.
 */
export async function changedModels(octokit: Octokit, ctx: RunContext, pullNumber: number, match: (file: string) => boolean): Promise<{ jobs: ModelJob[]; unchanged: number }> {
  const files = await octokit.paginate(octokit.rest.pulls.listFiles, { ...ctx.repo, pull_number: pullNumber, per_page: 100 });
  const jobs: ModelJob[] = [];
  let unchanged = 0;
  for (const f of files) {
    if (!match(f.filename)) continue;
    if (f.status === 'removed' || f.status === 'unchanged') {
      unchanged++;
      continue;
    }
    jobs.push(f.status === 'renamed' && f.previous_filename ? { path: f.filename, basePath: f.previous_filename } : { path: f.filename });
  }
  jobs.sort((a, b) => a.path.localeCompare(b.path));
  return { jobs, unchanged };
}
