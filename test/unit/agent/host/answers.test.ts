// How the Host runtime reads a plugin host's answers: which mean yes, which judge the candidate, and
// which are the host's own failure.
import { describe, expect, it } from 'vitest';
import {
  errorText,
  judgeCall,
  judgeTryActivate,
  MAX_QUOTED,
  quote,
} from '../../../../src/agent/host/answers.ts';

describe('judgeTryActivate', () => {
  const cases: { name: string; status: number; body: string; kind: string; says?: RegExp }[] = [
    {
      name: "Workflow's build_ok",
      status: 200,
      body: '{"status":"build_ok","moduleTypes":["http.server"]}',
      kind: 'accepted',
    },
    { name: 'a 2xx JSON body without status', status: 204, body: '{}', kind: 'accepted' },
    { name: 'an empty 2xx body', status: 200, body: '', kind: 'accepted' },
    {
      name: "Workflow's build_failed (422)",
      status: 422,
      body: '{"status":"build_failed","error":"module type \\"bad.type\\" not found"}',
      kind: 'rejected',
      says: /HTTP 422.*module type "bad\.type" not found/,
    },
    { name: 'a 422 with a text body', status: 422, body: 'nope', kind: 'rejected', says: /: nope$/ },
    {
      name: 'a 2xx whose status is not build_ok',
      status: 200,
      body: '{"status":"build_failed","error":"boom"}',
      kind: 'rejected',
      says: /status build_failed.*boom/,
    },
    { name: 'a 500', status: 500, body: '{"error":"db down"}', kind: 'failed', says: /HTTP 500: db down/ },
    {
      name: 'a 503 (Workflow without a try-activate function)',
      status: 503,
      body: '',
      kind: 'failed',
      says: /HTTP 503$/,
    },
    { name: 'a redirect, never followed', status: 302, body: '', kind: 'failed', says: /HTTP 302/ },
    {
      name: 'a 401',
      status: 401,
      body: '{"error":"unauthorized"}',
      kind: 'failed',
      says: /401: unauthorized/,
    },
    {
      name: 'a 2xx body that is not JSON',
      status: 200,
      body: '<html>',
      kind: 'failed',
      says: /not a JSON object/,
    },
    { name: 'a 2xx JSON array', status: 200, body: '[]', kind: 'failed', says: /not a JSON object/ },
  ];
  it.each(cases)('reads $name as $kind', ({ status, body, kind, says }) => {
    const verdict = judgeTryActivate({ status, body });
    expect(verdict.kind).toBe(kind);
    if (says && verdict.kind !== 'accepted') expect(verdict.message).toMatch(says);
  });
});

describe('judgeCall', () => {
  it.each([
    [200, 'accepted'],
    [204, 'accepted'],
    [299, 'accepted'],
    [300, 'failed'],
    [404, 'failed'],
    [422, 'failed'],
    [500, 'failed'],
  ])('reads HTTP %i as %s', (status, kind) => {
    expect(judgeCall('activate', { status, body: '' }).kind).toBe(kind);
  });

  it("quotes the host's error", () => {
    const verdict = judgeCall('The reload', { status: 500, body: '{"error":"reload failed (rolled back)"}' });
    expect(verdict).toEqual({
      kind: 'failed',
      message: 'The reload answered HTTP 500: reload failed (rolled back)',
    });
  });
});

describe('what a host says is cleaned before it reaches a status', () => {
  it('drops control characters (no forged log or terminal lines)', () => {
    expect(quote('bad\n\u001b[31mred\r\u0000x')).toBe('bad [31mred x');
  });
  it(`cuts text at ${MAX_QUOTED} characters`, () => {
    expect(quote('e'.repeat(10_000))).toHaveLength(MAX_QUOTED + 1);
  });
  it('ignores an error field that is not a string', () => {
    expect(errorText({ status: 422, body: '{"error":{"nested":true}}' })).toBe('');
  });
});
