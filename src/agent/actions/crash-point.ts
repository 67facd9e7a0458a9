// Crash points for the crash-safety tests: inert unless PLUGIN_RELEASE_CRASH_AT names this step, in
// which case the agent SIGKILLs itself there, exactly as a power cut or OOM kill would stop it.

export function crashPoint(step: string): void {
  if (process.env.PLUGIN_RELEASE_CRASH_AT === step) process.kill(process.pid, 'SIGKILL');
}
