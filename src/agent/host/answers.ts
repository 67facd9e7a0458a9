// What a plugin host's answers mean: pure functions from an HTTP answer to a verdict (docs/host-runtime.md).
// The host is another program on the node, so its bodies are hostile input: they are read capped, parsed
// defensively, and only a cleaned, bounded `error` text ever reaches a status message.

/** One answer from the host: its HTTP status and its body (already capped by the client). */
export interface HostAnswer {
  status: number;
  body: string;
}

/**
 * accepted: the host said yes. rejected: the host judged the candidate and refused it (its fault).
 * failed: the host misbehaved (an unexpected status or body): the host's fault, not the candidate's.
 */
export type Verdict =
  | { kind: 'accepted' }
  | { kind: 'rejected'; message: string }
  | { kind: 'failed'; message: string };

/** Longest host-supplied text quoted in a message. */
export const MAX_QUOTED = 1024;

/** `text` without control characters, cut to MAX_QUOTED characters: safe to put in a status message. */
export function quote(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return clean.length > MAX_QUOTED ? `${clean.slice(0, MAX_QUOTED)}…` : clean;
}

/** The body as a JSON object, or undefined when it is not one. */
function jsonObject(body: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** What the host said went wrong: its JSON `error` field, else its body as text, else nothing. */
export function errorText(answer: HostAnswer): string {
  const error = jsonObject(answer.body)?.error;
  if (typeof error === 'string' && error.trim() !== '') return quote(error);
  return jsonObject(answer.body) ? '' : quote(answer.body);
}

const is2xx = (status: number) => status >= 200 && status < 300;
const saying = (answer: HostAnswer) => {
  const text = errorText(answer);
  return text ? `: ${text}` : '';
};

/**
 * try-activate: 2xx whose JSON `status` is `build_ok` (or absent, or an empty body) accepts; 422, or
 * 2xx with any other `status`, rejects with the host's `error`; anything else (another status, a 2xx
 * body that is not a JSON object) is a host failure.
 */
export function judgeTryActivate(answer: HostAnswer): Verdict {
  if (answer.status === 422) {
    return { kind: 'rejected', message: `The host refused the candidate config (HTTP 422)${saying(answer)}` };
  }
  if (!is2xx(answer.status)) {
    return {
      kind: 'failed',
      message: `The host answered try-activate with HTTP ${answer.status}${saying(answer)}`,
    };
  }
  if (answer.body.trim() === '') return { kind: 'accepted' };
  const body = jsonObject(answer.body);
  if (!body) {
    return {
      kind: 'failed',
      message: `The host answered try-activate with HTTP ${answer.status} and a body that is not a JSON object`,
    };
  }
  if (body.status === undefined || body.status === 'build_ok') return { kind: 'accepted' };
  const status = typeof body.status === 'string' ? quote(body.status) : JSON.stringify(body.status);
  return {
    kind: 'rejected',
    message: `The host refused the candidate config (status ${status})${saying(answer)}`,
  };
}

/** activate, plugin reload and health: 2xx is success; anything else fails with the host's words. */
export function judgeCall(what: string, answer: HostAnswer): Verdict {
  if (is2xx(answer.status)) return { kind: 'accepted' };
  return { kind: 'failed', message: `${what} answered HTTP ${answer.status}${saying(answer)}` };
}
