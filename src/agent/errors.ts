// Agent errors: each names the NodeReason it ends in, so every failure becomes a condition reason.
import type { NodeReason } from '../api/conditions.ts';
import { PluginReleaseError } from '../runtime/errors.ts';

/**
 * A node activation step failed. `reason` is the NodeReason reported on the PluginActivation;
 * `message` is a sentence an operator can act on (it may include the plugin's last stderr lines).
 */
export class ActivationError extends PluginReleaseError {
  readonly reason: NodeReason;
  constructor(reason: NodeReason, message: string, options?: ErrorOptions) {
    super(`PR_ERR_${reason.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`, message, options);
    this.reason = reason;
  }
}
