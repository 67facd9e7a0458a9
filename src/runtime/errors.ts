// The project's error base: every error carries a stable `code` (PR_ERR_*), like undici's UND_ERR_*.

export class PluginReleaseError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * A reconcile failure that retrying cannot fix (an invalid spec, a conflict a person must resolve).
 * The reconciler marks the object Stalled with `reason` and does not requeue it.
 */
export class TerminalError extends PluginReleaseError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super('PR_ERR_TERMINAL', message, options);
    this.reason = reason;
  }
}
