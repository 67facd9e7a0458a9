#!/usr/bin/env node
// An example plugin with no dependencies: go-plugin handshake, gRPC health (service "plugin") and an
// HTTP echo, all on one unix socket. It is what `npm run demo` rolls out, and a template for plugins.
//
// Environment (set by the plugin-release agent, as go-plugin's host would):
//   PLUGIN_RELEASE_MAGIC_COOKIE (or the key in ECHO_COOKIE_KEY)  must match, or we refuse to run
//   PLUGIN_PROTOCOL_VERSIONS  comma-separated app protocol versions the host accepts
//   PLUGIN_UNIX_SOCKET_DIR    where to create our socket (a temp dir otherwise)
//   PLUGIN_CONFIG             optional JSON config: { "greeting": string, "requires": string }
//   PLUGIN_RELEASE_NODE       the node's name (expanded in "requires")
// The version is read from the VERSION file beside this program.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttp1 } from 'node:http';
import { createServer as createHttp2, type ServerHttp2Stream } from 'node:http2';
import { createServer as createNet } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const COOKIE_KEY = 'PLUGIN_RELEASE_MAGIC_COOKIE';
const COOKIE_VALUE = 'b3a1c5d2-plugin-release';
const SUPPORTED_PROTOCOLS = [1];

if (process.env[COOKIE_KEY] !== COOKIE_VALUE) {
  console.error('This binary is a plugin. It is meant to be started by a plugin host, not run directly.');
  process.exit(1);
}

const hostVersions = (process.env.PLUGIN_PROTOCOL_VERSIONS ?? '1').split(',').map(Number);
const protocol = Math.max(...SUPPORTED_PROTOCOLS.filter((v) => hostVersions.includes(v)));
if (!Number.isFinite(protocol)) {
  console.error(
    `No common protocol version: host accepts ${hostVersions}, plugin speaks ${SUPPORTED_PROTOCOLS}.`,
  );
  process.exit(1);
}

const version = readFileSync(join(import.meta.dirname, 'VERSION'), 'utf8').trim();
const config: { greeting?: string; requires?: string } = process.env.PLUGIN_CONFIG
  ? JSON.parse(readFileSync(process.env.PLUGIN_CONFIG, 'utf8'))
  : {};

/**
 * Healthy while what the config says we require exists (a broken config makes us unhealthy).
 * `${PLUGIN_RELEASE_NODE}` in the path stands for the node's name, so one config can differ per node.
 */
// biome-ignore lint/suspicious/noTemplateCurlyInString: the literal placeholder a config writes.
const required = config.requires?.replaceAll('${PLUGIN_RELEASE_NODE}', process.env.PLUGIN_RELEASE_NODE ?? '');
const healthy = () => required === undefined || existsSync(required);

// gRPC over HTTP/2 by hand: a unary call is one length-prefixed protobuf message each way.
function grpcHealth(stream: ServerHttp2Stream) {
  stream.on('data', () => {});
  stream.on('end', () => {
    const status = healthy() ? 1 : 2; // SERVING : NOT_SERVING
    const message = Buffer.from([0x08, status]); // HealthCheckResponse { status }
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  });
}

const h2 = createHttp2();
h2.on('stream', (stream, headers) => {
  if (headers[':path'] === '/grpc.health.v1.Health/Check') return grpcHealth(stream);
  stream.respond(
    { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' },
    { endStream: true },
  );
});

const h1 = createHttp1((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(healthy() ? 200 : 503).end(healthy() ? 'ok\n' : 'unhealthy\n');
    return;
  }
  res
    .writeHead(200, { 'content-type': 'text/plain' })
    .end(`${config.greeting ?? 'echo'} from ${version} (pid ${process.pid})\n`);
});

// One socket, two protocols: an HTTP/2 connection preface goes to gRPC, anything else to HTTP/1.
const PREFACE = Buffer.from('PRI * HTTP/2.0');
const listener = createNet((socket) => {
  socket.once('readable', () => {
    const head: Buffer | null = socket.read(PREFACE.length) ?? socket.read();
    if (head === null) return socket.destroy();
    socket.unshift(head);
    (head.subarray(0, PREFACE.length).equals(PREFACE) ? h2 : h1).emit('connection', socket);
  });
});

const dir = process.env.PLUGIN_UNIX_SOCKET_DIR ?? mkdtempSync(join(tmpdir(), 'echo-plugin-'));
const address = join(dir, `echo-${process.pid}.sock`);
listener.listen(address, () => {
  // The go-plugin handshake: CORE-PROTOCOL|APP-PROTOCOL|NETWORK|ADDRESS|PROTOCOL
  process.stdout.write(`1|${protocol}|unix|${address}|grpc\n`);
});

const shutdown = () => listener.close(() => process.exit(0));
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
