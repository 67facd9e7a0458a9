// The go-plugin handshake line parser and version negotiation, table-driven.
import { describe, expect, it } from 'vitest';
import { ActivationError } from '../../../../src/agent/errors.ts';
import {
  formatProtocolVersions,
  isHandshakeAttempt,
  negotiateProtocol,
  parseHandshakeLine,
  parseProtocolVersions,
} from '../../../../src/agent/runtime/handshake.ts';

const CERT = 'MIIB'.padEnd(120, 'A');

describe('parseHandshakeLine', () => {
  const accepted = [1, 2];
  it.each([
    {
      name: 'a go-plugin 1.0 grpc line over tcp with the empty cert field',
      given: '1|1|tcp|127.0.0.1:1234|grpc|',
      want: { coreProtocol: 1, appProtocol: 1, network: 'tcp', address: '127.0.0.1:1234', protocol: 'grpc' },
    },
    {
      name: 'a unix socket line as go-plugin prints it on Linux',
      given: '1|2|unix|/tmp/plugin3045149687|grpc|\n',
      want: { appProtocol: 2, network: 'unix', address: '/tmp/plugin3045149687', protocol: 'grpc' },
    },
    {
      name: 'the five-field form',
      given: '1|1|tcp|localhost:10000|grpc',
      want: { address: 'localhost:10000', protocol: 'grpc' },
    },
    {
      name: 'the four-field legacy form, which means netrpc',
      given: '1|1|tcp|127.0.0.1:1',
      want: { protocol: 'netrpc' },
    },
    { name: 'an explicit netrpc plugin', given: '1|1|tcp|127.0.0.1:1|netrpc', want: { protocol: 'netrpc' } },
    { name: 'an IPv6 address', given: '1|1|tcp|[::1]:4000|grpc|', want: { address: '[::1]:4000' } },
    {
      name: 'the multiplexing field true',
      given: '1|1|tcp|127.0.0.1:1|grpc||true',
      want: { multiplex: true },
    },
    {
      name: 'the multiplexing field as Go prints false',
      given: '1|1|tcp|127.0.0.1:1|grpc||false',
      want: { multiplex: false },
    },
    {
      name: 'a short unused extra field (ignored, as go-plugin does)',
      given: '1|1|tcp|127.0.0.1:1|grpc|x',
      want: { protocol: 'grpc' },
    },
    {
      name: 'fields after the seventh',
      given: '1|1|tcp|127.0.0.1:1|grpc||true|future',
      want: { multiplex: true },
    },
    {
      name: 'CRLF and surrounding spaces',
      given: '  1|1|tcp|127.0.0.1:1|grpc|\r\n',
      want: { address: '127.0.0.1:1' },
    },
  ])('accepts $name', ({ given, want }) => {
    expect(parseHandshakeLine(given, accepted)).toMatchObject(want);
  });

  it.each([
    { name: 'fewer than four fields', given: '1|1|tcp', reason: 'HandshakeInvalid' },
    { name: 'a non-numeric core version', given: 'x|1|tcp|127.0.0.1:1|grpc', reason: 'HandshakeInvalid' },
    { name: 'core protocol 2', given: '2|1|tcp|127.0.0.1:1|grpc', reason: 'ProtocolVersionMismatch' },
    { name: 'a non-numeric app version', given: '1|one|tcp|127.0.0.1:1|grpc', reason: 'HandshakeInvalid' },
    {
      name: 'an app version the host did not offer',
      given: '1|3|tcp|127.0.0.1:1|grpc',
      reason: 'ProtocolVersionMismatch',
    },
    { name: 'an unknown network', given: '1|1|carrier-pigeon|coop:7|grpc', reason: 'HandshakeInvalid' },
    { name: 'a tcp address without a port', given: '1|1|tcp|127.0.0.1|grpc', reason: 'HandshakeInvalid' },
    { name: 'a tcp port out of range', given: '1|1|tcp|127.0.0.1:70000|grpc', reason: 'HandshakeInvalid' },
    { name: 'a tcp port 0', given: '1|1|tcp|127.0.0.1:0|grpc', reason: 'HandshakeInvalid' },
    { name: 'a relative unix path', given: '1|1|unix|plugin.sock|grpc', reason: 'HandshakeInvalid' },
    {
      name: 'a unix path too long for sun_path',
      given: `1|1|unix|/${'a'.repeat(120)}|grpc`,
      reason: 'HandshakeInvalid',
    },
    { name: 'an unknown RPC protocol', given: '1|1|tcp|127.0.0.1:1|soap', reason: 'HandshakeInvalid' },
    {
      name: 'a TLS server certificate (AutoMTLS)',
      given: `1|1|tcp|127.0.0.1:1|grpc|${CERT}`,
      reason: 'HandshakeInvalid',
    },
    {
      name: 'a multiplexing field that is no boolean',
      given: '1|1|tcp|127.0.0.1:1|grpc||maybe',
      reason: 'HandshakeInvalid',
    },
    {
      name: 'a line longer than the bound',
      given: `1|1|tcp|127.0.0.1:1|grpc|${'x'.repeat(20_000)}`,
      reason: 'HandshakeInvalid',
    },
  ])('rejects $name with $reason', ({ given, reason }) => {
    let error: unknown;
    try {
      parseHandshakeLine(given, accepted);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ActivationError);
    expect((error as ActivationError).reason).toBe(reason);
  });
});

describe('isHandshakeAttempt', () => {
  it.each([
    { given: '1|1|tcp|127.0.0.1:1|grpc|', want: true },
    { given: '1|1|pigeon|x', want: true },
    { given: 'starting plugin...', want: false },
    { given: '2024/01/01 level=info msg=a|b|c|d', want: false },
    { given: 'a|b|c|d', want: false },
    { given: '1|2|3', want: false },
    { given: '', want: false },
  ])('classifies $given as $want', ({ given, want }) => {
    expect(isHandshakeAttempt(given)).toBe(want);
  });
});

describe('protocol versions', () => {
  it.each([
    { name: 'the highest common version', host: [1, 2, 3], plugin: [2, 3, 4], want: 3 },
    { name: 'the only common version', host: [1], plugin: [1], want: 1 },
    { name: 'nothing without a common version', host: [1, 2], plugin: [3], want: undefined },
    { name: 'nothing when the host offers none', host: [], plugin: [1], want: undefined },
  ])('negotiates $name', ({ host, plugin, want }) => {
    expect(negotiateProtocol(host, plugin)).toBe(want);
  });

  it('formats and reads PLUGIN_PROTOCOL_VERSIONS as go-plugin does, skipping invalid entries', () => {
    expect(formatProtocolVersions([1, 2])).toBe('1,2');
    expect(parseProtocolVersions('1, 2,x,,3')).toEqual([1, 2, 3]);
    expect(parseProtocolVersions(undefined)).toEqual([]);
  });
});
