// node:http without Node's bundled undici. An ESM import of node:http evaluates its WebSocket,
// CloseEvent and MessageEvent getters, which load undici (about 13 MB resident that nothing here
// uses; docs/benchmarks.md); getBuiltinModule hands over the same module without touching them.
export const http: typeof import('node:http') = process.getBuiltinModule('node:http');
// Its types too, so that no other module names node:http: biome.json refuses any such import, since a
// type import looks the same to it.
export type { Agent, IncomingMessage, Server } from 'node:http';
