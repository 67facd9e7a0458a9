// Unary gRPC calls with hand-rolled protobuf for the two tiny messages the agent speaks (health, contract).
//
// The messages are a string or enum field or two, so a 40-line wire codec beats loading .proto files at
// run time (nothing to ship beside the compiled code). The channel uses a local subchannel pool so one
// failed attempt's reconnect backoff never leaks into the next attempt. grpc-js is loaded on the first
// call: an agent whose plugins probe over http, tcp or exec never pays its 5 MB (docs/benchmarks.md).
import type { HandshakeResult } from '../../api/index.ts';

let grpcModule: Promise<typeof import('@grpc/grpc-js')> | undefined;

/** The grpc-js target for an announced address. */
export function grpcTarget(target: Pick<HandshakeResult, 'network' | 'address'>): string {
  return target.network === 'unix' ? `unix://${target.address}` : target.address;
}

export class GrpcCallError extends Error {
  readonly grpcCode: number | undefined;
  constructor(message: string, grpcCode: number | undefined) {
    super(message);
    this.grpcCode = grpcCode;
  }
}

/** One unary call with a deadline; rejects with GrpcCallError (grpcCode set when the server answered). */
export async function unaryCall(
  target: Pick<HandshakeResult, 'network' | 'address'>,
  method: string,
  request: Buffer,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  grpcModule ??= import('@grpc/grpc-js');
  const grpc = await grpcModule;
  const client = new grpc.Client(grpcTarget(target), grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.enable_retries': 0,
  });
  return new Promise<Buffer>((resolve, reject) => {
    const identity = (b: Buffer) => b;
    const onAbort = () => call.cancel();
    const call = client.makeUnaryRequest(
      method,
      identity,
      identity,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err, reply) => {
        signal?.removeEventListener('abort', onAbort);
        client.close();
        if (err)
          reject(
            new GrpcCallError(`${method}: ${grpc.status[err.code] ?? err.code}: ${err.details}`, err.code),
          );
        else resolve(reply ?? Buffer.alloc(0));
      },
    );
    if (signal?.aborted) call.cancel();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** gRPC status codes (grpc.status), fixed by the protocol. */
export const GRPC_UNIMPLEMENTED = 12;
export const GRPC_NOT_FOUND = 5;

/** Encodes a protobuf string field (wire type 2). */
export function stringField(field: number, value: string): Buffer {
  const bytes = Buffer.from(value);
  return Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
}

/** Decodes a protobuf message into field number → values (varints as numbers, bytes as Buffers). */
export function decodeFields(buf: Buffer): Map<number, Array<number | Buffer>> {
  const fields = new Map<number, Array<number | Buffer>>();
  let i = 0;
  const readVarint = (): number => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated protobuf varint');
      const b = buf[i++]!;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
      if (scale > 2 ** 63) throw new Error('protobuf varint too long');
    }
  };
  while (i < buf.length) {
    const key = readVarint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    let value: number | Buffer;
    if (wire === 0) value = readVarint();
    else if (wire === 2) {
      const len = readVarint();
      if (i + len > buf.length) throw new Error('truncated protobuf field');
      value = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      i += 8;
      continue;
    } else if (wire === 5) {
      i += 4;
      continue;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    const values = fields.get(field) ?? [];
    values.push(value);
    fields.set(field, values);
  }
  return fields;
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
