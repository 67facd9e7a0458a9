// The demo's background client: requests through every node's stable front, back to back, counting
// answers by version and every failure — the number that shows a swap cost clients nothing.
import { request } from 'node:http';

export interface TrafficCounts {
  ok: number;
  failed: number;
  /** Answers by the plugin version that served them. */
  versions: Record<string, number>;
  lastErrors: string[];
}

function getOnce(socketPath: string): Promise<{ version: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/', agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        body += chunk;
      });
      res.on('end', () => {
        const version = /from (\S+)/.exec(body)?.[1];
        resolve(res.statusCode === 200 && version ? { version } : { error: `HTTP ${res.statusCode}` });
      });
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }));
    req.end();
  });
}

/** Starts one request loop per front socket; `stop()` ends them and returns the counts. */
export function startTraffic(sockets: readonly string[]) {
  const counts: TrafficCounts = { ok: 0, failed: 0, versions: {}, lastErrors: [] };
  let running = true;
  const loops = sockets.map(async (socket) => {
    while (running) {
      const r = await getOnce(socket);
      if ('version' in r) {
        counts.ok++;
        counts.versions[r.version] = (counts.versions[r.version] ?? 0) + 1;
      } else {
        counts.failed++;
        counts.lastErrors = [...counts.lastErrors.slice(-4), r.error];
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  });
  return {
    counts,
    /** Resets the counts (the loops keep going). */
    reset() {
      Object.assign(counts, { ok: 0, failed: 0, versions: {}, lastErrors: [] });
    },
    async stop(): Promise<TrafficCounts> {
      running = false;
      await Promise.all(loops);
      return counts;
    },
  };
}

/** One request through `socket`: the serving version, or undefined. */
export async function servingVersion(socket: string): Promise<string | undefined> {
  const r = await getOnce(socket);
  return 'version' in r ? r.version : undefined;
}
