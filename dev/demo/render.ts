// The demo's live view: a nodes × phase table redrawn in place on a TTY, plain change lines otherwise.

export interface NodeRow {
  node: string;
  phase: string;
  revision: string;
  version: string;
  active: string;
  reason: string;
}

export interface Frame {
  title: string;
  release: string;
  traffic: string;
  rows: NodeRow[];
}

const PHASE_COLOR: Record<string, string> = {
  Active: '32',
  Probed: '32',
  Probing: '33',
  Staged: '33',
  Pending: '90',
  RolledBack: '31',
  Failed: '31;1',
};

function pad(s: string, n: number) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n);
}

/** Renders frames to `out`: in place when `tty`, else one line per node change. */
export class LiveView {
  #drawnLines = 0;
  readonly #last = new Map<string, string>();
  readonly #started = Date.now();
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;

  constructor(out: NodeJS.WriteStream, tty: boolean) {
    this.#out = out;
    this.#tty = tty;
  }

  /** Prints a line above the live table (it scrolls away; the table stays at the bottom). */
  say(line: string): void {
    if (this.#tty) this.#clear();
    this.#out.write(`${line}\n`);
    this.#drawnLines = 0;
  }

  draw(frame: Frame): void {
    if (!this.#tty) {
      for (const r of frame.rows) {
        const key = `${r.phase}/${r.revision}/${r.active}`;
        if (this.#last.get(r.node) === key) continue;
        this.#last.set(r.node, key);
        const t = ((Date.now() - this.#started) / 1000).toFixed(1).padStart(5);
        const reason = r.reason ? ` (${r.reason})` : '';
        this.#out.write(
          `[${t}s] ${pad(r.node, 8)} ${pad(r.phase, 10)} v${r.version} active=${r.active}${reason}\n`,
        );
      }
      return;
    }
    this.#clear();
    const lines = [
      `  ${frame.title}`,
      `  release: ${frame.release}`,
      `  traffic: ${frame.traffic}`,
      `  ${pad('NODE', 8)} ${pad('PHASE', 11)} ${pad('VERSION', 8)} ${pad('ACTIVE', 14)} REASON`,
      ...frame.rows.map((r) => {
        const color = PHASE_COLOR[r.phase] ?? '0';
        return `  ${pad(r.node, 8)} \x1b[${color}m${pad(r.phase, 11)}\x1b[0m ${pad(r.version, 8)} ${pad(r.active, 14)} ${r.reason}`;
      }),
    ];
    this.#out.write(`${lines.join('\n')}\n`);
    this.#drawnLines = lines.length;
  }

  #clear(): void {
    if (this.#drawnLines > 0) this.#out.write(`\x1b[${this.#drawnLines}F\x1b[J`);
    this.#drawnLines = 0;
  }
}
