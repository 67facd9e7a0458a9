// Reusable field schemas: digests, confined paths, names, durations and the metav1.Condition shape.
// Every regular expression here is valid in both ECMAScript and RE2, because the same pattern
// lands in the CRD and the Kubernetes API server compiles it with Go's regexp package.
import { z } from 'zod';
import { API_VERSION } from './group.ts';

/** One path segment that is neither empty, `.` nor `..`. */
const SEGMENT = String.raw`([^/.][^/]*|\.[^/.][^/]*|\.\.[^/]+)`;

export const ABSOLUTE_PATH_PATTERN = new RegExp(`^(/${SEGMENT})+$`);
export const RELATIVE_PATH_PATTERN = new RegExp(`^${SEGMENT}(/${SEGMENT})*$`);
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
export const DNS_LABEL_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_SUBDOMAIN_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/**
 * A revision names a directory on every node (`releases/<revision>`), so it must be one safe path
 * component. The controller's revisions are 12 lowercase hex digits (revisionOf); the API accepts any
 * RFC 1123 label (lowercase letters, digits, inner "-"), which can never be ".", ".." or hold a "/".
 */
export const REVISION_PATTERN = DNS_LABEL_PATTERN;
export const REASON_PATTERN = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;
export const PERCENT_PATTERN = /^(100|[1-9]?[0-9])%$/;
export const SERVE_ADDRESS_PATTERN = /^(unix:\/\/\/[^\s]+|tcp:\/\/[^/\s]+:[0-9]{1,5})$/;

export const absolutePath = () =>
  z
    .string()
    .max(4096)
    .regex(ABSOLUTE_PATH_PATTERN, 'must be an absolute path without empty, "." or ".." segments');

export const relativePath = () =>
  z
    .string()
    .max(4096)
    .regex(
      RELATIVE_PATH_PATTERN,
      'must be a relative path inside the artifact, without "." or ".." segments',
    );

export const digest = () =>
  z.string().regex(DIGEST_PATTERN, 'must be "sha256:" followed by 64 lowercase hex digits');

export const dnsLabel = () =>
  z.string().min(1).max(63).regex(DNS_LABEL_PATTERN, 'must be a lowercase RFC 1123 label (a-z, 0-9, "-")');

export const dnsSubdomain = () =>
  z
    .string()
    .min(1)
    .max(253)
    .regex(DNS_SUBDOMAIN_PATTERN, 'must be a lowercase RFC 1123 subdomain (a-z, 0-9, "-", ".")');

export const revisionName = () =>
  z
    .string()
    .min(1)
    .max(63)
    .regex(REVISION_PATTERN, 'must be a lowercase RFC 1123 label (a-z, 0-9, "-"), such as 3f2a9c0d1e4b');

export const seconds = (min: number, max: number) => z.int().min(min).max(max);

/** `maxUnavailable`: a node count (≥ 1) or a percentage of the targeted nodes ("10%"). */
export const intOrPercent = () =>
  z
    .union([z.int().min(1), z.string().regex(PERCENT_PATTERN, 'must be a percentage such as "25%"')])
    .meta({ 'x-kubernetes-int-or-string': true });

export const ConditionStatus = z.enum(['True', 'False', 'Unknown']);

/** The metav1.Condition shape, as kstatus, `kubectl wait`, Flux and Argo CD read it. */
export const Condition = z.object({
  type: z.string().min(1).max(316),
  status: ConditionStatus,
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: z.iso.datetime(),
  reason: z.string().min(1).max(1024).regex(REASON_PATTERN),
  message: z.string().max(32768),
});
export type Condition = z.infer<typeof Condition>;

export const conditionList = () =>
  z
    .array(Condition)
    .max(16)
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

/** The subset of metav1.ObjectMeta the domain reads; unknown metadata passes through untouched. */
export const ObjectMeta = z.looseObject({
  name: z.string().optional(),
  namespace: z.string().optional(),
  uid: z.string().optional(),
  resourceVersion: z.string().optional(),
  generation: z.int().optional(),
  creationTimestamp: z.string().optional(),
  deletionTimestamp: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  finalizers: z.array(z.string()).optional(),
  ownerReferences: z
    .array(
      z.looseObject({
        apiVersion: z.string(),
        kind: z.string(),
        name: z.string(),
        uid: z.string(),
        controller: z.boolean().optional(),
        blockOwnerDeletion: z.boolean().optional(),
      }),
    )
    .optional(),
});
export type ObjectMeta = z.infer<typeof ObjectMeta>;

/** A top-level object of `kind` in this API group: its metadata, spec and optional status. */
export function resourceSchema<K extends string, Spec extends z.ZodType, Status extends z.ZodType>(
  kind: K,
  spec: Spec,
  status: Status,
) {
  return z.object({
    apiVersion: z.literal(API_VERSION),
    kind: z.literal(kind),
    metadata: ObjectMeta,
    spec,
    status: status.optional(),
  });
}
