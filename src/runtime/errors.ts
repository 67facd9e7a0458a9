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
 * A reconcile failure that retrying cannot fix: only a person's change helps, and that change enqueues
 * the key again. The writer records it in the status first (the release Stalled, the activation Failed,
 * with `reason`), then throws this; the work queue logs it through `onError`, counts it as `terminal`
 * and does not retry it. Today: an invalid spec, on either side.
 */
export class TerminalError extends PluginReleaseError {
  readonly reason: string;
  constructor(reason: string, message: string, options?: ErrorOptions) {
    super('PR_ERR_TERMINAL', message, options);
    this.reason = reason;
  }
}
