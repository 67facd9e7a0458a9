// Crash points for the crash-safety tests: inert unless PLUGIN_RELEASE_CRASH_AT names this step, in
// which case the agent SIGKILLs itself there, exactly as a power cut or OOM kill would stop it.
// `step+<ms>` arms a SIGKILL <ms> milliseconds after the step is reached (the agent runs on meanwhile),
// which lands random kills in the few milliseconds around a step, e.g. `launch:start+3` near a spawn.

let armed = false;

export function crashPoint(step: string): void {
  const at = process.env.PLUGIN_RELEASE_CRASH_AT;
  if (at === undefined) return;
  if (at === step) process.kill(process.pid, 'SIGKILL');
  const plus = at.lastIndexOf('+');
  if (armed || plus < 0 || at.slice(0, plus) !== step) return;
  const ms = Number(at.slice(plus + 1));
  if (!Number.isFinite(ms) || ms < 0) return;
  armed = true;
  if (ms === 0) process.kill(process.pid, 'SIGKILL');
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), ms);
}
