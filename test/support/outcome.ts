// A reconcile's outcome as one comparable value, so a table row can say what each reconcile ended in.
import { TerminalError } from '../../src/runtime/errors.ts';
import type { ReconcileResult } from '../../src/runtime/reconcile.ts';

/** The result, or `terminal <reason>` for a TerminalError, or the message of anything else thrown. */
export async function outcome(reconcile: Promise<ReconcileResult>): Promise<ReconcileResult | string> {
  try {
    return await reconcile;
  } catch (error) {
    return error instanceof TerminalError ? `terminal ${error.reason}` : String((error as Error).message);
  }
}
