// The HTTPS front of the dev cluster: bearer-token authentication, routing of /api and /apis paths
// to verbs, content negotiation (JSON, YAML, Table, PartialObjectMetadata), fault injection,
// per-verb request counting, and watch streams.
import { once } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import {
  type Api,
  type DeleteOptions,
  type FieldValidation,
  type ListOptions,
  PATCH_TYPES,
  parseRv,
} from './api.ts';
import {
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
  openApiDocument,
  openApiIndex,
  openApiPath,
  versionInfo,
} from './discovery.ts';
import { managerFromUserAgent } from './managedfields.ts';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.ts';
import { parseFieldSelector, parseLabelSelector } from './selectors.ts';
import { ApiError, errors } from './status.ts';
import type { Entry } from './store.ts';
import { type IncludeObject, toTable } from './table.ts';
import { type WatchRender, WatchStream, type WatchTuning } from './watch.ts';

/** Lists longer than this are streamed in chunks of this many items. */
const LIST_CHUNK = 500;

/** Requests larger than this are refused, as the real server refuses bodies over 3 MiB. */
const MAX_BODY_BYTES = 3 * 1024 * 1024;

export interface FaultState {
  failNext: { count: number; status: 500 | 429 | 503; retryAfterSeconds?: number };
  delayMs: number;
}

export interface ServerOptions {
  token: string;
  cert: string;
  key: string;
  logger: Logger;
  watch: WatchTuning;
}

interface ResourceRoute {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

type Output =
  | { kind: 'json' }
  | { kind: 'yaml' }
  | { kind: 'table'; includeObject: IncludeObject }
  | { kind: 'partial' };

interface MediaRange {
  type: string;
  params: Record<string, string>;
}

function parseAccept(header: string | undefined): MediaRange[] {
  if (!header?.trim()) return [{ type: 'application/json', params: {} }];
  return header.split(',').map((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    const out: Record<string, string> = {};
    for (const p of params) {
      const i = p.indexOf('=');
      if (i > 0) out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
    }
    return { type: (type ?? '').toLowerCase(), params: out };
  });
}

function contentTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function boolParam(value: string | null): boolean {
  return value === 'true' || value === '1';
}

export class ApiServer {
  readonly api: Api;
  readonly faults: FaultState = { failNext: { count: 0, status: 500 }, delayMs: 0 };
  readonly #counts = new Map<string, number>();
  readonly #options: ServerOptions;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  readonly #watches = new Set<WatchStream>();
  readonly #openApiDocs = new Map<string, string>();
  port = 0;

  constructor(api: Api, options: ServerOptions) {
    this.api = api;
    this.#options = options;
    for (const [group, versions] of api.types.groups()) {
      for (const version of versions) {
        const doc = openApiDocument(api.types.inGroupVersion(group, version));
        this.#openApiDocs.set(openApiPath(group, version), JSON.stringify(doc));
      }
    }
  }

  /** Listens on 127.0.0.1:port (0 = ephemeral) and resolves with the bound port. */
  async listen(port: number): Promise<number> {
    const server = createServer({ cert: this.#options.cert, key: this.#options.key }, (req, res) => {
      this.#handle(req, res).catch((error) =>
        this.#options.logger.error({ err: error }, 'devcluster: request failed'),
      );
    });
    server.on('secureConnection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    // Watches are long; only the request head has a deadline.
    server.requestTimeout = 0;
    server.keepAliveTimeout = 30_000;
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.#server = server;
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : port;
    return this.port;
  }

  /** Ends every watch, closes every connection and the listener. */
  async close(): Promise<void> {
    this.dropWatches();
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  dropWatches(): void {
    for (const w of [...this.#watches]) w.end();
  }

  requestCounts(): Array<{ verb: string; resource: string; subresource?: string; count: number }> {
    return [...this.#counts]
      .map(([key, count]) => {
        const [verb, resource, subresource] = key.split('|') as [string, string, string];
        return subresource ? { verb, resource, subresource, count } : { verb, resource, count };
      })
      .sort((a, b) =>
        `${a.resource}|${a.subresource ?? ''}|${a.verb}`.localeCompare(
          `${b.resource}|${b.subresource ?? ''}|${b.verb}`,
        ),
      );
  }

  resetRequestCounts(): void {
    this.#counts.clear();
  }

  #count(verb: string, route: ResourceRoute) {
    const key = `${verb}|${route.type.plural}|${route.subresource ?? ''}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const method = req.method ?? 'GET';
    try {
      const auth = req.headers.authorization ?? '';
      if (auth !== `Bearer ${this.#options.token}`) throw errors.unauthorized();
      if (this.faults.delayMs > 0) await new Promise((r) => setTimeout(r, this.faults.delayMs));
      const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
      const route = this.#resourceRoute(segments);
      if (route) {
        const verb = this.#verbOf(method, route, url);
        this.#count(verb, route);
        this.#injectFault();
        await this.#handleResource(req, res, url, route, verb);
      } else {
        this.#injectFault();
        this.#handleNonResource(res, segments, method);
      }
    } catch (error) {
      this.#fail(res, error, method, url);
    }
  }

  #injectFault() {
    const fault = this.faults.failNext;
    if (fault.count <= 0) return;
    fault.count--;
    if (fault.status === 429) throw errors.tooManyRequests(fault.retryAfterSeconds);
    if (fault.status === 503) throw errors.serviceUnavailable(fault.retryAfterSeconds);
    const error = errors.internal('injected fault');
    if (fault.retryAfterSeconds) error.headers['Retry-After'] = String(fault.retryAfterSeconds);
    throw error;
  }

  #fail(res: ServerResponse, error: unknown, method: string, url: URL) {
    let apiError: ApiError;
    if (error instanceof ApiError) {
      apiError = error;
    } else {
      this.#options.logger.error({ err: error, method, path: url.pathname }, 'devcluster: internal error');
      apiError = errors.internal((error as Error)?.message ?? String(error));
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.#send(res, apiError.code, JSON.stringify(apiError.status), apiError.headers);
  }

  #send(res: ServerResponse, code: number, body: string, headers: Record<string, string | string[]> = {}) {
    res.writeHead(code, {
      'Content-Type': 'application/json',
      'Cache-Control': 'no-cache, private',
      'Content-Length': Buffer.byteLength(body),
      ...headers,
    });
    res.end(body);
  }

  #handleNonResource(res: ServerResponse, segments: string[], method: string) {
    const types = this.api.types;
    const [first, second, third, ...rest] = segments;
    let body: unknown;
    if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed();
    if (segments.length === 1 && (first === 'healthz' || first === 'livez' || first === 'readyz')) {
      res.writeHead(200, {
        'Content-Type': 'text/plain; charset=utf-8',
        'X-Content-Type-Options': 'nosniff',
      });
      res.end('ok');
      return;
    }
    if (segments.length === 1 && first === 'version') body = versionInfo();
    else if (segments.length === 1 && first === 'api') body = apiVersions(`127.0.0.1:${this.port}`);
    else if (segments.length === 2 && first === 'api') body = apiResourceList(types, '', second!);
    else if (segments.length === 1 && first === 'apis') body = apiGroupList(types);
    else if (segments.length === 2 && first === 'apis') body = apiGroup(types, second!);
    else if (segments.length === 3 && first === 'apis') body = apiResourceList(types, second!, third!);
    else if (first === 'openapi' && second === 'v3') {
      if (segments.length === 2) body = openApiIndex(types, this.#openApiDocs);
      else {
        const doc = this.#openApiDocs.get([third, ...rest].join('/'));
        if (doc) {
          this.#send(res, 200, doc);
          return;
        }
      }
    }
    if (body === undefined) throw errors.notFoundPath();
    this.#send(res, 200, JSON.stringify(body));
  }

  /** Maps /api/v1/... and /apis/<g>/<v>/... onto a resource, namespace, name and subresource. */
  #resourceRoute(segments: string[]): ResourceRoute | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segments[0] === 'api' && segments.length >= 3) {
      group = '';
      version = segments[1]!;
      rest = segments.slice(2);
    } else if (segments[0] === 'apis' && segments.length >= 4) {
      group = segments[1]!;
      version = segments[2]!;
      rest = segments.slice(3);
    } else {
      return undefined;
    }
    const types = this.api.types;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3 && types.lookup(group, version, rest[2]!)?.namespaced) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    const type = types.lookup(group, version, plural!);
    if (!type || extra.length > 0) throw errors.notFoundPath();
    if (subresource !== undefined) {
      const known =
        (subresource === 'status' && type.statusSubresource) ||
        (subresource === 'finalize' && type.storage === '/namespaces');
      if (!known) throw errors.notFoundPath();
    }
    if (name !== undefined && type.namespaced && namespace === undefined) throw errors.notFoundPath();
    return { type, namespace, name, subresource };
  }

  #verbOf(method: string, route: ResourceRoute, url: URL): string {
    switch (method) {
      case 'GET':
      case 'HEAD':
        if (route.name !== undefined) return 'get';
        return boolParam(url.searchParams.get('watch')) ? 'watch' : 'list';
      case 'POST':
        return 'create';
      case 'PUT':
        return 'update';
      case 'PATCH':
        return 'patch';
      case 'DELETE':
        return route.name !== undefined ? 'delete' : 'deletecollection';
      default:
        throw methodNotAllowed();
    }
  }

  #output(req: IncomingMessage, readVerb: boolean): Output {
    for (const range of parseAccept(req.headers.accept)) {
      const { type, params } = range;
      const meta = params.g === 'meta.k8s.io' && (params.v === 'v1' || params.v === 'v1beta1');
      if (type === 'application/json' || type === 'application/*' || type === '*/*') {
        if (params.as === undefined) return { kind: 'json' };
        if (readVerb && meta && params.as === 'Table')
          return { kind: 'table', includeObject: 'PartialObjectMetadata' };
        if (
          readVerb &&
          meta &&
          (params.as === 'PartialObjectMetadata' || params.as === 'PartialObjectMetadataList')
        )
          return { kind: 'partial' };
      } else if (type === 'application/yaml' && params.as === undefined) {
        return { kind: 'yaml' };
      }
    }
    throw errors.notAcceptable(['application/json', 'application/yaml']);
  }

  async #readBody(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY_BYTES) {
        throw new ApiError({
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: 'the server has received a request that is too large',
          reason: 'RequestEntityTooLarge',
          code: 413,
        });
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Decodes a POST/PUT body as JSON or YAML. */
  #decodeBody(req: IncomingMessage, raw: string): unknown {
    const contentType = contentTypeOf(req);
    if (contentType === '' || contentType === 'application/json' || contentType === '*/*') {
      try {
        return JSON.parse(raw);
      } catch (error) {
        throw errors.badRequest(`couldn't get version/kind; json parse error: ${(error as Error).message}`);
      }
    }
    if (contentType === 'application/yaml') {
      try {
        return parseYaml(raw);
      } catch (error) {
        throw errors.badRequest(`couldn't get version/kind; yaml parse error: ${(error as Error).message}`);
      }
    }
    throw errors.unsupportedMediaType(contentType, [
      'application/json',
      'application/yaml',
      'application/vnd.kubernetes.protobuf',
      'application/cbor',
    ]);
  }

  #writeOptions(url: URL, route: ResourceRoute, req: IncomingMessage) {
    const fv = url.searchParams.get('fieldValidation');
    if (fv !== null && fv !== 'Ignore' && fv !== 'Warn' && fv !== 'Strict' && fv !== '') {
      throw errors.badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict"`);
    }
    const dryRun = url.searchParams.getAll('dryRun');
    for (const d of dryRun) if (d !== 'All') throw errors.badRequest(`Invalid dry run value: ${d}`);
    return {
      dryRun: dryRun.includes('All'),
      fieldValidation: (fv || undefined) as FieldValidation | undefined,
      fieldManager: url.searchParams.get('fieldManager') ?? undefined,
      defaultManager: managerFromUserAgent(req.headers['user-agent']),
      subresource: route.subresource,
      force: boolParam(url.searchParams.get('force')),
    };
  }

  #listOptions(url: URL, type: ResourceType): ListOptions {
    const q = url.searchParams;
    const limitParam = q.get('limit');
    let limit: number | undefined;
    if (limitParam !== null && limitParam !== '') {
      if (!/^-?\d+$/.test(limitParam)) throw errors.badRequest(`invalid limit: ${limitParam}`);
      limit = Number(limitParam);
    }
    const fieldLabels = ['metadata.name', 'metadata.namespace', ...Object.keys(type.fieldLabels)];
    return {
      labelSelector: parseLabelSelector(q.get('labelSelector')),
      fieldSelector: parseFieldSelector(q.get('fieldSelector'), fieldLabels),
      limit,
      continueToken: q.get('continue') || undefined,
      resourceVersion: q.get('resourceVersion') ?? undefined,
      resourceVersionMatch: q.get('resourceVersionMatch') || undefined,
    };
  }

  async #handleResource(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    route: ResourceRoute,
    verb: string,
  ): Promise<void> {
    const { type, namespace, name } = route;
    const api = this.api;
    const readVerb = verb === 'get' || verb === 'list' || verb === 'watch';
    const output = this.#output(req, readVerb);
    if (output.kind === 'table') {
      const include = url.searchParams.get('includeObject');
      if (include !== null) {
        if (include !== 'None' && include !== 'Object' && include !== 'PartialObjectMetadata')
          throw errors.badRequest(`includeObject must be one of "None", "Object", "PartialObjectMetadata"`);
        output.includeObject = include;
      }
    }
    switch (verb) {
      case 'get': {
        const entry = api.get(type, namespace, name!);
        this.#sendObject(res, type, entry, output);
        return;
      }
      case 'list': {
        const result = api.list(type, namespace, this.#listOptions(url, type));
        await this.#sendList(res, type, result.entries, listMeta(result), output);
        return;
      }
      case 'watch':
        this.#startWatch(res, url, route, output);
        return;
      case 'create': {
        if (name !== undefined || route.subresource) throw methodNotAllowed();
        if (type.namespaced && namespace === undefined) throw errors.notFoundPath();
        const body = this.#decodeBody(req, await this.#readBody(req));
        const result = api.create(type, namespace, body, this.#writeOptions(url, route, req));
        this.#sendWrite(res, result.code, result.object, result.warnings, output);
        return;
      }
      case 'update': {
        if (name === undefined) throw methodNotAllowed();
        const body = this.#decodeBody(req, await this.#readBody(req));
        const result = api.update(type, namespace, name, body, this.#writeOptions(url, route, req));
        this.#sendWrite(res, result.code, result.object, result.warnings, output);
        return;
      }
      case 'patch': {
        if (name === undefined) throw methodNotAllowed();
        const contentType = contentTypeOf(req);
        const raw = await this.#readBody(req);
        const result = api.patch(
          type,
          namespace,
          name,
          contentType,
          raw,
          this.#writeOptions(url, route, req),
        );
        this.#sendWrite(res, result.code, result.object, result.warnings, output);
        return;
      }
      case 'delete': {
        const options = this.#deleteOptions(url, await this.#readBody(req));
        const result = api.delete(type, namespace, name!, options);
        this.#sendWrite(res, result.code, result.object, [], output);
        return;
      }
      case 'deletecollection': {
        const options = this.#deleteOptions(url, await this.#readBody(req));
        const list = api.deleteCollection(type, namespace, this.#listOptions(url, type), options);
        this.#sendWrite(res, 200, list, [], output);
        return;
      }
    }
  }

  #deleteOptions(url: URL, raw: string): DeleteOptions {
    let body: Record<string, unknown> = {};
    if (raw.trim()) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch (error) {
        throw errors.badRequest(`error decoding DeleteOptions: ${(error as Error).message}`);
      }
    }
    const q = url.searchParams;
    const policy = (body.propagationPolicy as string | undefined) ?? q.get('propagationPolicy') ?? undefined;
    if (policy !== undefined && !['Orphan', 'Background', 'Foreground'].includes(policy)) {
      throw errors.invalid({ group: 'meta.k8s.io', kind: 'DeleteOptions' }, '', [
        {
          type: 'FieldValueNotSupported',
          field: 'propagationPolicy',
          value: policy,
          detail: 'supported values: "Foreground", "Background", "Orphan", "nil"',
        },
      ]);
    }
    const orphanParam = q.get('orphanDependents');
    const dryRun = [...((body.dryRun as string[] | undefined) ?? []), ...q.getAll('dryRun')];
    const grace = body.gracePeriodSeconds ?? q.get('gracePeriodSeconds');
    return {
      propagationPolicy: policy as DeleteOptions['propagationPolicy'],
      orphanDependents:
        typeof body.orphanDependents === 'boolean'
          ? body.orphanDependents
          : orphanParam !== null
            ? orphanParam === 'true'
            : undefined,
      preconditions: body.preconditions as DeleteOptions['preconditions'],
      dryRun: dryRun.includes('All'),
      gracePeriodSeconds: grace === null || grace === undefined ? undefined : Number(grace),
    };
  }

  #render(output: Output, json: string, object: () => unknown): { body: string; contentType: string } {
    if (output.kind === 'yaml') return { body: toYaml(object()), contentType: 'application/yaml' };
    return { body: json, contentType: 'application/json' };
  }

  #sendObject(res: ServerResponse, type: ResourceType, entry: Entry, output: Output) {
    if (output.kind === 'table') {
      const object = this.api.external(type, entry.object);
      const table = toTable(
        type,
        [object],
        { resourceVersion: entry.object.metadata.resourceVersion },
        output,
      );
      this.#send(res, 200, JSON.stringify(table));
      return;
    }
    if (output.kind === 'partial') {
      this.#send(res, 200, JSON.stringify(partial(entry.object)));
      return;
    }
    const json = this.api.serialize(type, entry);
    const { body, contentType } = this.#render(output, json, () => JSON.parse(json));
    this.#send(res, 200, body, { 'Content-Type': contentType });
  }

  async #sendList(
    res: ServerResponse,
    type: ResourceType,
    entries: Entry[],
    meta: Record<string, unknown>,
    output: Output,
  ): Promise<void> {
    if (output.kind === 'table') {
      const objects = entries.map((e) => this.api.external(type, e.object));
      this.#send(res, 200, JSON.stringify(toTable(type, objects, meta, output)));
      return;
    }
    if (output.kind === 'partial') {
      const list = {
        kind: 'PartialObjectMetadataList',
        apiVersion: 'meta.k8s.io/v1',
        metadata: meta,
        items: entries.map((e) => partial(e.object)),
      };
      this.#send(res, 200, JSON.stringify(list));
      return;
    }
    // Built-in lists carry items without TypeMeta (typed Go lists); custom resource lists carry it.
    const item = (e: Entry) => {
      if (type.fromStorage) {
        const { apiVersion: _a, kind: _k, ...rest } = type.fromStorage(e.object);
        return JSON.stringify(rest);
      }
      return type.custom ? this.api.serialize(type, e) : e.body;
    };
    // Custom resource lists are unstructured: storage's SetContinue("") leaves `continue: ""` in
    // them on the last (or only) page, where typed lists omit it.
    const listMetadata = type.custom ? { continue: '', ...meta } : meta;
    const head = `{"kind":${JSON.stringify(type.listKind)},"apiVersion":${JSON.stringify(apiVersionOf(type))},"metadata":${JSON.stringify(listMetadata)},"items":[`;
    if (output.kind === 'json' && entries.length > LIST_CHUNK) {
      await this.#streamList(res, head, entries, item);
      return;
    }
    const json = `${head}${entries.map(item).join(',')}]}`;
    const { body, contentType } = this.#render(output, json, () => JSON.parse(json));
    this.#send(res, 200, body, { 'Content-Type': contentType });
  }

  /**
   * Writes a large list in chunks, yielding to the event loop between them (and waiting for the
   * client to drain), so one big list does not stall every other request and watch. The entries are
   * an immutable snapshot, so later writes cannot tear the response.
   */
  async #streamList(res: ServerResponse, head: string, entries: Entry[], item: (e: Entry) => string) {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.write(head);
    for (let i = 0; i < entries.length; i += LIST_CHUNK) {
      if (res.destroyed) return;
      const part = entries
        .slice(i, i + LIST_CHUNK)
        .map(item)
        .join(',');
      const flowing = res.write(i === 0 ? part : `,${part}`);
      if (!flowing) await drainedOrClosed(res);
      else await new Promise((resolve) => setImmediate(resolve));
    }
    res.end(']}');
  }

  #sendWrite(res: ServerResponse, code: number, object: unknown, warnings: string[], output: Output) {
    const json = JSON.stringify(object);
    const { body, contentType } = this.#render(output, json, () => object);
    const headers: Record<string, string | string[]> = { 'Content-Type': contentType };
    if (warnings.length) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
    this.#send(res, code, body, headers);
  }

  #startWatch(res: ServerResponse, url: URL, route: ResourceRoute, output: Output) {
    const q = url.searchParams;
    const { type } = route;
    const options = this.#listOptions(url, type);
    const rvParam = q.get('resourceVersion');
    const resourceVersion = rvParam && rvParam !== '0' ? parseRv(rvParam) : undefined;
    const timeoutParam = q.get('timeoutSeconds');
    const requested = timeoutParam ? Number(timeoutParam) : 0;
    if (!Number.isInteger(requested) || requested < 0)
      throw errors.badRequest(`invalid timeoutSeconds: ${timeoutParam}`);
    // Without timeoutSeconds (or with 0) the real server picks a random timeout in [min-request-timeout, 2×).
    const timeoutSeconds = requested > 0 ? requested : 1800 + Math.floor(Math.random() * 1800);
    const sendInitial = q.get('sendInitialEvents');
    const allowWatchBookmarks = boolParam(q.get('allowWatchBookmarks'));
    if (sendInitial === 'true') {
      const rvm = q.get('resourceVersionMatch');
      if (rvm !== 'NotOlderThan' || !allowWatchBookmarks) {
        throw errors.invalid({ group: 'meta.k8s.io', kind: 'ListOptions' }, '', [
          {
            type: 'FieldValueForbidden',
            field: 'resourceVersionMatch',
            detail:
              'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan and allowWatchBookmarks',
          },
        ]);
      }
    }
    const render: WatchRender =
      output.kind === 'table' ? { kind: 'table', includeObject: output.includeObject } : { kind: 'json' };
    const stream = new WatchStream(
      this.api,
      res,
      {
        type,
        namespace: route.namespace,
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        resourceVersion,
        sendInitialEvents: sendInitial === null ? undefined : sendInitial === 'true',
        allowWatchBookmarks,
        timeoutSeconds,
        render,
      },
      this.#options.watch,
      (s) => this.#watches.delete(s),
    );
    this.#watches.add(stream);
    stream.start();
  }
}

/** Resolves when the response can take more data, or is gone. */
function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

function listMeta(result: { resourceVersion: string; continueToken?: string; remainingItemCount?: number }) {
  const meta: Record<string, unknown> = { resourceVersion: result.resourceVersion };
  if (result.continueToken) meta.continue = result.continueToken;
  if (result.remainingItemCount !== undefined) meta.remainingItemCount = result.remainingItemCount;
  return meta;
}

function partial(object: KubeObject): Record<string, unknown> {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: object.metadata };
}

function methodNotAllowed(): ApiError {
  return new ApiError({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: 'the server does not allow this method on the requested resource',
    reason: 'MethodNotAllowed',
    details: {},
    code: 405,
  });
}

export { PATCH_TYPES };
