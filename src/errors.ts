/**
 * A problem the user can fix (bad file, bad flag, bad config). The CLI prints its message as one line
 * and exits 2; anything else is a bug in prune-guard and keeps its stack trace.
 */
export class UserError extends Error {
  override readonly name = 'UserError';
  constructor(message: string) {
    super(message);
  }
}

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Message of an unknown thrown value, for wrapping low-level failures into a UserError. */
export function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
