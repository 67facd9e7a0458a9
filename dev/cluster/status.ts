// meta/v1 Status bodies shaped exactly as kube-apiserver's apimachinery/pkg/api/errors builds them.

/** A field.Error: the unit of an Invalid (422) response, as apimachinery's validation/field renders it. */
export interface FieldError {
  /** CauseType, e.g. FieldValueRequired, FieldValueInvalid. */
  type: FieldErrorType;
  /** The JSON path of the field, e.g. `spec.plugin`, `metadata.labels`. */
  field: string;
  /** The offending value; `OMIT` leaves it out of the message (as field.Required and friends do). */
  value?: unknown;
  detail?: string;
}

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueTypeInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueDuplicate'
  | 'FieldValueForbidden'
  | 'FieldValueTooLong'
  | 'FieldValueTooMany'
  | 'FieldValueNotFound';

/** The human word apimachinery prints for each error type (ErrorType.String()). */
const TYPE_WORDS: Record<FieldErrorType, string> = {
  FieldValueRequired: 'Required value',
  FieldValueInvalid: 'Invalid value',
  FieldValueTypeInvalid: 'Invalid value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueForbidden: 'Forbidden',
  FieldValueTooLong: 'Too long',
  FieldValueTooMany: 'Too many',
  FieldValueNotFound: 'Not found',
};

export const OMIT = Symbol('omit value');

/** A value whose Go rendering is not a JSON value's, e.g. a uint64 0 that `%#v` prints as `0x0`. */
export class GoLiteral {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

/** Renders a Go value the way `%v`/`%q`/`%#v` would for the JSON values an API object holds. */
export function goValue(value: unknown): string {
  if (value instanceof GoLiteral) return value.text;
  if (value === null || value === undefined) return '"null"';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return `[]interface {}{${value.map(goValue).join(', ')}}`;
  const entries = Object.entries(value as Record<string, unknown>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${JSON.stringify(k)}:${goValue(v)}`);
  return `map[string]interface {}{${entries.join(', ')}}`;
}

/** field.Error.ErrorBody(): the message without the field path. */
export function errorBody(error: FieldError): string {
  const word = TYPE_WORDS[error.type];
  let body: string;
  if (
    error.type === 'FieldValueRequired' ||
    error.type === 'FieldValueForbidden' ||
    error.type === 'FieldValueTooLong' ||
    error.value === OMIT ||
    !('value' in error)
  ) {
    body = word;
  } else {
    body = `${word}: ${goValue(error.value)}`;
  }
  return error.detail ? `${body}: ${error.detail}` : body;
}

export function fieldErrorString(error: FieldError): string {
  return `${error.field || '<nil>'}: ${errorBody(error)}`;
}

/** The constructors of apimachinery's validation/field package. */
export const field = {
  required: (path: string, detail = ''): FieldError => ({ type: 'FieldValueRequired', field: path, detail }),
  invalid: (path: string, value: unknown, detail: string): FieldError => ({
    type: 'FieldValueInvalid',
    field: path,
    value,
    detail,
  }),
  typeInvalid: (path: string, value: unknown, detail: string): FieldError => ({
    type: 'FieldValueTypeInvalid',
    field: path,
    value,
    detail,
  }),
  notSupported: (path: string, value: unknown, supported: string[]): FieldError => ({
    type: 'FieldValueNotSupported',
    field: path,
    value,
    detail: supported.length ? `supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}` : '',
  }),
  duplicate: (path: string, value: unknown): FieldError => ({
    type: 'FieldValueDuplicate',
    field: path,
    value,
  }),
  forbidden: (path: string, detail: string): FieldError => ({
    type: 'FieldValueForbidden',
    field: path,
    detail,
  }),
  tooLong: (path: string, max: number): FieldError => ({
    type: 'FieldValueTooLong',
    field: path,
    detail: `may not be more than ${max} ${max === 1 ? 'byte' : 'bytes'}`,
  }),
  tooMany: (path: string, actual: number, max: number): FieldError => ({
    type: 'FieldValueTooMany',
    field: path,
    value: actual,
    detail: `must have at most ${max} items`,
  }),
};

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A failed request: thrown by handlers, rendered by the server as the Status body and HTTP code. */
export class ApiError extends Error {
  readonly status: Status;
  readonly headers: Record<string, string>;
  constructor(status: Status, headers: Record<string, string> = {}) {
    super(status.message ?? status.reason ?? `HTTP ${status.code}`);
    this.name = 'ApiError';
    this.status = status;
    this.headers = headers;
  }
  get code(): number {
    return this.status.code;
  }
}

/** What a resource is called in messages: `plural.group` (or just `plural` in the core group). */
export interface QualifiedResource {
  group: string;
  resource: string;
}

function qualified(r: QualifiedResource): string {
  return r.group ? `${r.resource}.${r.group}` : r.resource;
}

/** Builds a Status, leaving out empty detail fields as Go's omitempty does. */
function failure(
  code: number,
  reason: string | undefined,
  message: string,
  details?: StatusDetails,
  headers?: Record<string, string>,
): ApiError {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, code };
  if (reason) status.reason = reason;
  if (details) {
    const clean: StatusDetails = {};
    if (details.name) clean.name = details.name;
    if (details.group) clean.group = details.group;
    if (details.kind) clean.kind = details.kind;
    if (details.uid) clean.uid = details.uid;
    if (details.causes?.length) clean.causes = details.causes;
    if (details.retryAfterSeconds) clean.retryAfterSeconds = details.retryAfterSeconds;
    // Details given as {} stand for Go's &StatusDetails{}, which renders as "details": {}.
    if (Object.keys(clean).length || Object.keys(details).length === 0) status.details = clean;
  }
  // Go's json encoding puts `reason` before `details` and `code` last; keep that order for diffs.
  const ordered: Status = {
    kind: status.kind,
    apiVersion: status.apiVersion,
    metadata: status.metadata,
    status: status.status,
    message: status.message,
    ...(status.reason ? { reason: status.reason } : {}),
    ...(status.details ? { details: status.details } : {}),
    code: status.code,
  };
  return new ApiError(ordered, headers);
}

export const errors = {
  notFound: (r: QualifiedResource, name: string) =>
    failure(404, 'NotFound', `${qualified(r)} "${name}" not found`, {
      name,
      group: r.group,
      kind: r.resource,
    }),
  alreadyExists: (r: QualifiedResource, name: string) =>
    failure(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, {
      name,
      group: r.group,
      kind: r.resource,
    }),
  conflict: (r: QualifiedResource, name: string, why: string) =>
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(r)} "${name}": ${why}`, {
      name,
      group: r.group,
      kind: r.resource,
    }),
  /** NewInvalid: kind is the Kind (not the resource), and the message aggregates the field errors. */
  invalid: (kind: { group: string; kind: string }, name: string, fieldErrors: FieldError[]) => {
    const seen = new Set<string>();
    const messages: string[] = [];
    for (const e of fieldErrors) {
      const s = fieldErrorString(e);
      if (!seen.has(s)) {
        seen.add(s);
        messages.push(s);
      }
    }
    const qualifiedKind = kind.group ? `${kind.kind}.${kind.group}` : kind.kind;
    const aggregate = messages.length === 1 ? messages[0] : `[${messages.join(', ')}]`;
    return failure(
      422,
      'Invalid',
      messages.length
        ? `${qualifiedKind} "${name}" is invalid: ${aggregate}`
        : `${qualifiedKind} "${name}" is invalid`,
      {
        name,
        group: kind.group,
        kind: kind.kind,
        causes: fieldErrors.map((e) => ({
          reason: e.type,
          message: errorBody(e),
          field: e.field || '<nil>',
        })),
      },
    );
  },
  badRequest: (message: string) => failure(400, 'BadRequest', message),
  forbidden: (r: QualifiedResource, name: string, why: string, causes?: StatusCause[]) =>
    failure(403, 'Forbidden', `${qualified(r)} "${name}" is forbidden: ${why}`, {
      name,
      group: r.group,
      kind: r.resource,
      causes,
    }),
  methodNotSupported: (r: QualifiedResource, verb: string) =>
    failure(405, 'MethodNotAllowed', `${verb} is not supported on resources of kind "${qualified(r)}"`, {
      group: r.group,
      kind: r.resource,
    }),
  unsupportedMediaType: (contentType: string, accepted: string[]) =>
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
      { causes: contentType ? [{ reason: 'UnexpectedServerResponse', message: contentType }] : [] },
    ),
  notAcceptable: (accepted: string[]) =>
    failure(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`),
  /**
   * NewGenericServerResponse(422, …, isUnexpectedResponse=false): what a failed JSON patch
   * operation answers. It drops the patch library's message (no causes), as the real server does.
   */
  patchRejected: () =>
    failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {}),
  /** A watch or continue token older than the retained history (etcd compaction). */
  expired: (message: string) => failure(410, 'Expired', message),
  gone: (message: string) => failure(410, 'Gone', message),
  unauthorized: () => failure(401, 'Unauthorized', 'Unauthorized'),
  notFoundPath: () => failure(404, 'NotFound', 'the server could not find the requested resource', {}),
  internal: (message: string) =>
    failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }),
  tooManyRequests: (retryAfterSeconds?: number) =>
    failure(
      429,
      'TooManyRequests',
      'Too many requests, please try again later.',
      { retryAfterSeconds },
      retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {},
    ),
  serviceUnavailable: (retryAfterSeconds?: number) =>
    failure(
      503,
      'ServiceUnavailable',
      'The server is currently unable to handle the request',
      { retryAfterSeconds },
      retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {},
    ),
  timeout: (message: string, retryAfterSeconds: number, causes?: StatusCause[]) =>
    failure(
      504,
      'Timeout',
      message,
      { retryAfterSeconds, causes },
      { 'Retry-After': String(retryAfterSeconds) },
    ),
};

/** The Status a successful DELETE answers for types that do not return the deleted object. */
export function successStatus(details: StatusDetails): Record<string, unknown> {
  const clean: StatusDetails = {};
  if (details.name) clean.name = details.name;
  if (details.group) clean.group = details.group;
  if (details.kind) clean.kind = details.kind;
  if (details.uid) clean.uid = details.uid;
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: clean };
}
