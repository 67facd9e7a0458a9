// Plugin log files: a size cap with copytruncate rotation (as logrotate's copytruncate), and tail reading.
//
// The plugin writes stdout.log/stderr.log itself through inherited fds (it must outlive the agent, so the
// agent never sits in the pipe). The agent opens both files O_APPEND before the spawn ('a'), so after the
// agent truncates a file the plugin's next write lands at the new end (offset 0), not at its old offset
// (which would leave a sparse file as big as before). Rotation: copy the last `maxBytes` to `<log>.1`
// (shifting `.1` → `.2` … up to `files`), then truncate the live file. Lines written between the copy and
// the truncate are lost; that is copytruncate's known trade-off, and the price of not piping.
import {
  closeSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';

/** Default cap of one live log file (stdout.log, stderr.log): 10 MiB. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Default number of rotated files kept per stream (`<log>.1`). */
export const DEFAULT_LOG_FILES = 1;
/** How often the agent checks the sizes while it runs. */
export const DEFAULT_LOG_CHECK_MS = 250;

export interface LogLimits {
  /** Cap of the live file in bytes; a bigger file is rotated at the next check. */
  maxBytes?: number;
  /** Rotated files kept per stream (0: truncate without keeping a copy). */
  files?: number;
  /** Interval of the size check in ms. */
  checkMs?: number;
}

/**
 * Rotates `path` when it is larger than `maxBytes`: keeps its last `maxBytes` in `path.1` (older copies
 * shift up to `path.<files>`), then truncates it to 0. Returns whether it rotated. Never throws (a log
 * that cannot be rotated is not worth failing a plugin for; the next check tries again).
 */
export function rotateLog(path: string, maxBytes: number, files: number): boolean {
  try {
    const size = statSync(path).size;
    if (size <= maxBytes) return false;
    if (files > 0) {
      for (let i = files - 1; i >= 1; i--) {
        try {
          renameSync(`${path}.${i}`, `${path}.${i + 1}`);
        } catch {
          // no such copy yet
        }
      }
      // The copy starts at a line boundary: a cut first line would be quoted as if it were whole.
      const tail = readTail(path, maxBytes);
      const newline = tail.indexOf(10);
      writeFileSync(
        `${path}.1`,
        newline >= 0 && newline < tail.length - 1 ? tail.subarray(newline + 1) : tail,
      );
    } else {
      rmSync(`${path}.1`, { force: true });
    }
    truncateSync(path, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks `paths` every `checkMs` and rotates each over its cap, until the returned function is called.
 * The timer is unref'd: it never keeps the agent alive.
 */
export function watchLogs(paths: string[], limits: LogLimits = {}): () => void {
  const maxBytes = limits.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
  const files = limits.files ?? DEFAULT_LOG_FILES;
  const check = () => {
    for (const path of paths) rotateLog(path, maxBytes, files);
  };
  const timer = setInterval(check, limits.checkMs ?? DEFAULT_LOG_CHECK_MS);
  timer.unref();
  check();
  return () => clearInterval(timer);
}

/**
 * The last `lines` lines of a log, reading the rotated copy `path.1` first when the live file (just
 * truncated) holds fewer. Long lines are cut at 1024 characters.
 */
export function tailLog(path: string, lines: number): string[] {
  const live = tailLines(path, lines);
  if (live.length >= lines) return live;
  const rotated = tailLines(`${path}.1`, lines - live.length);
  return [...rotated, ...live];
}

function tailLines(path: string, lines: number): string[] {
  if (lines <= 0) return [];
  let text: string;
  let cut: boolean;
  try {
    const size = statSync(path).size;
    const length = Math.min(size, 64 * 1024);
    text = readTail(path, length).toString('utf8');
    cut = length < size;
  } catch {
    return [];
  }
  const all = text.split('\n');
  if (all.at(-1) === '') all.pop();
  if (cut) all.shift();
  return all.slice(-lines).map((l) => (l.length > 1024 ? `${l.slice(0, 1024)}…` : l));
}

function readTail(path: string, maxBytes: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    const n = readSync(fd, buffer, 0, length, size - length);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}
