// Validates deploy/: every manifest against the Kubernetes schemas, the kustomize tree (and kubectl's
// own rendering of it), the CRD copies, the workloads' security settings, and RBAC granting exactly
// the table below.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { GROUP, Kinds } from '../../../src/api/index.ts';
import {
  isClusterScoped,
  isKnownKind,
  type KubeObject,
  schemaProblems,
  unknownFields,
} from './k8s-schema.ts';

const repo = join(import.meta.dirname, '../../..');
const deployDir = join(repo, 'deploy');
const NAMESPACE = 'plugin-release-system';
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const IMAGE = `ghcr.io/plugin-release/plugin-release:${pkg.version}`;

// ---------------------------------------------------------------------------------------------------
// Loading

const yamlFiles = (readdirSync(deployDir, { recursive: true, encoding: 'utf8' }) as string[])
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .sort();
const isKustomization = (file: string) => /(^|\/)kustomization\.ya?ml$/.test(file);

function readObjects(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(join(deployDir, file), 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null);
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
  [key: string]: unknown;
}

/**
 * Resolves a kustomization the way `kustomize build` does for the features deploy/ uses: resources
 * (files and directories with their own kustomization), `namespace` on namespaced objects, `images`.
 * Returns the objects and the files they came from; fails on a field it does not understand.
 */
function build(dir: string): { objects: KubeObject[]; files: string[] } {
  const k = parse(readFileSync(join(deployDir, dir, 'kustomization.yaml'), 'utf8')) as Kustomization;
  const unsupported = Object.keys(k).filter(
    (key) => !['apiVersion', 'kind', 'namespace', 'resources', 'images'].includes(key),
  );
  if (unsupported.length) throw new Error(`${dir}/kustomization.yaml uses ${unsupported.join(', ')}`);
  const objects: KubeObject[] = [];
  const files: string[] = [join(dir, 'kustomization.yaml')];
  for (const resource of k.resources ?? []) {
    const path = join(dir, resource);
    if (!existsSync(join(deployDir, path)))
      throw new Error(`${dir}/kustomization.yaml: ${resource} does not exist`);
    if (statSync(join(deployDir, path)).isDirectory()) {
      const sub = build(path);
      objects.push(...sub.objects);
      files.push(...sub.files);
    } else {
      objects.push(...readObjects(path));
      files.push(path);
    }
  }
  for (const o of objects) {
    if (k.namespace && !isClusterScoped(o)) o.metadata.namespace = k.namespace;
    for (const c of podSpecOf(o)?.containers ?? []) {
      const image = k.images?.find((i) => c.image.split(':')[0] === i.name);
      if (image) c.image = `${image.newName ?? image.name}:${image.newTag ?? c.image.split(':')[1]}`;
    }
  }
  return { objects, files };
}

interface Container {
  name: string;
  image: string;
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: { httpGet?: { path: string; port: number | string } };
  readinessProbe?: { httpGet?: { path: string; port: number | string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface PodSpec {
  serviceAccountName?: string;
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes?: Array<{ name: string; hostPath?: { path: string } }>;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
}
type Workload = KubeObject & {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
};
const podSpecOf = (o: KubeObject): PodSpec | undefined =>
  (o as Partial<Workload>).spec?.template?.spec as PodSpec | undefined;

const installed = build('.');
const objects = installed.objects;
const find = <T extends KubeObject = KubeObject>(kind: string, name: string): T => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`deploy/ has no ${kind} ${name}`);
  return found as T;
};
const controller = find<Workload>('Deployment', 'plugin-release-controller');
const agent = find<Workload>('DaemonSet', 'plugin-release-agent');

// ---------------------------------------------------------------------------------------------------
// Schemas

describe('every manifest under deploy/', () => {
  const manifests = yamlFiles
    .filter((f) => !isKustomization(f))
    .flatMap((f) => readObjects(f).map((o) => [f, o] as const));

  it('is a kind with a known Kubernetes schema', () => {
    expect(manifests.length).toBeGreaterThan(10);
    expect(
      manifests.filter(([, o]) => !isKnownKind(o)).map(([f, o]) => `${f}: ${o.apiVersion}/${o.kind}`),
    ).toEqual([]);
  });

  it.each(manifests.map(([file, o]) => [`${file} (${o.kind} ${o.metadata.name})`, o] as const))(
    '%s validates against the Kubernetes schema with no unknown field',
    (_name, object) => {
      expect(schemaProblems(object)).toEqual([]);
    },
  );
});

describe('the schema check itself', () => {
  it('catches a wrong type, a missing required field and a misspelt field', () => {
    const broken = structuredClone(controller) as Workload;
    const c = broken.spec.template.spec.containers[0]!;
    (c.ports![0] as { containerPort: unknown }).containerPort = 'eighty';
    (c as unknown as Record<string, unknown>).imagePullPolicyy = 'Always';
    delete (broken.spec as Partial<Workload['spec']>).selector;
    const problems = schemaProblems(broken).join('\n');
    expect(problems).toMatch(/containerPort must be integer/);
    expect(problems).toMatch(/spec must have required property selector/);
    expect(problems).toMatch(/unknown field \.spec\.template\.spec\.containers\[0\]\.imagePullPolicyy/);
  });

  it('leaves free-form values such as labels and CRD schemas alone', () => {
    expect(unknownFields({ metadata: { labels: { anything: 'x' } } }, 'V1Namespace')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Kustomize

describe('the kustomize tree', () => {
  const root = parse(readFileSync(join(deployDir, 'kustomization.yaml'), 'utf8')) as Kustomization;

  it(`installs into the ${NAMESPACE} namespace, which it creates`, () => {
    expect(root.namespace).toBe(NAMESPACE);
    expect(find('Namespace', NAMESPACE)).toBeDefined();
    for (const o of objects.filter((o) => !isClusterScoped(o)))
      expect(o.metadata.namespace, o.metadata.name).toBe(NAMESPACE);
  });

  it('references every manifest, except the Argo CD snippets that go into Argo CD itself', () => {
    const referenced = new Set([...installed.files, ...build('crds').files]);
    const orphans = yamlFiles.filter((f) => !referenced.has(f) && !f.startsWith('argocd/'));
    expect(orphans).toEqual([]);
  });

  it('installs the CRDs alone from deploy/crds, the same objects the full install has', () => {
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition');
    expect(crds).toHaveLength(2);
    expect(build('crds').objects).toEqual(crds);
  });

  it('names no object twice', () => {
    const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
  });

  it('pins the image at the package version, in the manifests and the images transformer', () => {
    expect(root.images).toEqual([{ name: IMAGE.split(':')[0], newTag: pkg.version }]);
    const images = yamlFiles
      .flatMap((f) => readObjects(f))
      .flatMap((o) => podSpecOf(o)?.containers ?? [])
      .map((c) => c.image);
    expect(images.length).toBe(2);
    for (const image of images) expect(image).toBe(IMAGE);
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!kubectl)(
    `renders with kubectl's kustomize to exactly the objects above${kubectl ? '' : ' (skipped: kubectl is not installed)'}`,
    () => {
      const result = spawnSync('kubectl', ['kustomize', deployDir], { encoding: 'utf8', timeout: 20_000 });
      expect(result.status, result.stderr).toBe(0);
      const rendered = parseAllDocuments(result.stdout).map((d) => d.toJS() as KubeObject);
      const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const sort = (list: KubeObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
      expect(sort(rendered)).toEqual(sort(objects));
    },
  );

  it.skipIf(!kubectl)(
    `deploy-compat/kubernetes-1.20 differs from deploy/ only in what 1.20 and 1.21 lack${kubectl ? '' : ' (skipped: kubectl is not installed)'}`,
    () => {
      const result = spawnSync('kubectl', ['kustomize', join(repo, 'deploy-compat/kubernetes-1.20')], {
        encoding: 'utf8',
        timeout: 20_000,
      });
      expect(result.status, result.stderr).toBe(0);
      const rendered = parseAllDocuments(result.stdout).map((d) => d.toJS() as KubeObject);
      const expected = structuredClone(objects).map((o) => {
        if (o.kind === 'PodDisruptionBudget') return { ...o, apiVersion: 'policy/v1beta1' };
        if (o.kind === 'DaemonSet') {
          (o as Workload & { spec: { updateStrategy: unknown } }).spec.updateStrategy = {
            type: 'RollingUpdate',
            rollingUpdate: { maxUnavailable: 1 },
          };
        }
        return o;
      });
      const key = (o: KubeObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
      const sort = (list: KubeObject[]) => [...list].sort((a, b) => key(a).localeCompare(key(b)));
      expect(sort(rendered)).toEqual(sort(expected));
    },
  );
});

describe('the CRDs in deploy/crds', () => {
  const generated = readdirSync(join(repo, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const copies = readdirSync(join(deployDir, 'crds'))
    .filter((f) => f.endsWith('.yaml') && !isKustomization(f))
    .sort();

  it('are the generated crds/ files, no more and no fewer', () => {
    expect(copies).toEqual(generated);
  });

  it.each(generated)('%s is a byte-for-byte copy of crds/ (`npm run gen:crds` writes both)', (file) => {
    expect(readFileSync(join(deployDir, 'crds', file), 'utf8')).toBe(
      readFileSync(join(repo, 'crds', file), 'utf8'),
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// Workloads

const container = (w: Workload) => {
  expect(w.spec.template.spec.containers).toHaveLength(1);
  return w.spec.template.spec.containers[0]!;
};
/** The container port a probe or Service names, by number or by name. */
const portNumber = (c: Container, port: number | string | undefined) =>
  typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort;

describe.each([
  ['controller Deployment', controller],
  ['agent DaemonSet', agent],
] as const)('the %s', (_name, workload) => {
  const pod = workload.spec.template.spec;
  const c = container(workload);

  it('selects exactly its own pods', () => {
    for (const [k, v] of Object.entries(workload.spec.selector.matchLabels))
      expect(workload.spec.template.metadata.labels[k]).toBe(v);
  });

  it('cannot escalate: read-only root, no privilege escalation, every capability dropped, seccomp RuntimeDefault', () => {
    expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext?.privileged).toBeUndefined();
    expect(c.securityContext?.capabilities?.drop).toEqual(['ALL']);
    const seccomp = (c.securityContext?.seccompProfile ?? pod.securityContext?.seccompProfile) as {
      type: string;
    };
    expect(seccomp.type).toBe('RuntimeDefault');
    expect([pod.hostNetwork, pod.hostPID, pod.hostIPC]).toEqual([undefined, undefined, undefined]);
  });

  it('requests CPU and memory and limits memory', () => {
    expect(Object.keys(c.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
    expect(c.resources?.limits?.memory).toBeDefined();
  });

  it('runs under its own ServiceAccount', () => {
    expect(find('ServiceAccount', pod.serviceAccountName!).metadata.namespace).toBe(NAMESPACE);
  });
});

describe('the controller Deployment', () => {
  const pod = controller.spec.template.spec;
  const c = container(controller);

  it('runs as uid 65532, never as root', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
    expect(c.securityContext?.capabilities?.add).toBeUndefined();
  });

  it('runs 2 replicas with leader election and metrics on 0.0.0.0:8080', () => {
    expect(controller.spec.replicas).toBe(2);
    expect(c.args).toEqual(['controller', '--leader-elect', '--metrics-addr', '0.0.0.0:8080']);
  });

  it('probes liveness on /healthz and readiness on /readyz, on the metrics port 8080', () => {
    expect(c.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(c.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(portNumber(c, c.livenessProbe?.httpGet?.port)).toBe(8080);
    expect(portNumber(c, c.readinessProbe?.httpGet?.port)).toBe(8080);
  });

  it('limits CPU as well', () => {
    expect(c.resources?.limits?.cpu).toBeDefined();
  });

  it('is scraped through a metrics Service that selects its pods and targets port 8080', () => {
    const service = find<
      KubeObject & {
        spec: {
          selector: Record<string, string>;
          ports: Array<{ name: string; targetPort: string | number }>;
        };
      }
    >('Service', 'plugin-release-controller-metrics');
    for (const [k, v] of Object.entries(service.spec.selector))
      expect(controller.spec.template.metadata.labels[k]).toBe(v);
    expect(service.spec.ports.map((p) => portNumber(c, p.targetPort))).toEqual([8080]);
  });
});

describe('the agent DaemonSet', () => {
  const pod = agent.spec.template.spec;
  const c = container(agent);
  const STAGING = '/var/lib/plugin-release/staging';
  const ROOT = '/var/lib/plugin-release/agent';
  const mount = (path: string) => {
    const m = c.volumeMounts?.find((v) => v.mountPath === path);
    const volume = pod.volumes?.find((v) => v.name === m?.name);
    return { readOnly: m?.readOnly === true, hostPath: volume?.hostPath?.path };
  };

  it('runs the keeper, which holds the fronts and runs the agent for its own node, each taking over from an older pod', () => {
    expect(c.args).toEqual([
      'keeper',
      '--root',
      ROOT,
      '--takeover',
      '--run',
      '--',
      'agent',
      '--node',
      '$(NODE_NAME)',
      '--staging-root',
      STAGING,
      '--root',
      ROOT,
      '--metrics-addr',
      '0.0.0.0:8081',
      '--takeover',
    ]);
  });

  it('learns its node name and its pod UID from the downward API', () => {
    expect(c.env?.find((e) => e.name === 'NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    expect(c.env?.find((e) => e.name === 'POD_UID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.uid');
  });

  it('upgrades a node by surging a new pod beside the old one, never with the node unserved', () => {
    const strategy = (agent.spec as { updateStrategy?: { rollingUpdate?: Record<string, unknown> } })
      .updateStrategy;
    expect(strategy?.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect((agent.spec as { minReadySeconds?: number }).minReadySeconds).toBeGreaterThan(0);
    expect((pod as { shareProcessNamespace?: boolean }).shareProcessNamespace).toBe(true);
  });

  it('mounts the host staging root read-only and the host agent root read-write, at the host paths', () => {
    expect(mount(STAGING)).toEqual({ readOnly: true, hostPath: STAGING });
    expect(mount(ROOT)).toEqual({ readOnly: false, hostPath: ROOT });
    const hostPaths = (pod.volumes ?? []).filter((v) => v.hostPath).map((v) => v.hostPath!.path);
    expect(hostPaths.sort()).toEqual([ROOT, STAGING]);
  });

  it('keeps only the capabilities that run plugins as another user (KILL, SETGID, SETUID)', () => {
    expect([...(c.securityContext?.capabilities?.add ?? [])].sort()).toEqual(['KILL', 'SETGID', 'SETUID']);
  });

  it('serves metrics and health on port 8081', () => {
    expect(c.ports?.map((p) => p.containerPort)).toEqual([8081]);
    expect(portNumber(c, c.livenessProbe?.httpGet?.port)).toBe(8081);
    expect(portNumber(c, c.readinessProbe?.httpGet?.port)).toBe(8081);
  });
});

// ---------------------------------------------------------------------------------------------------
// RBAC

/** [apiGroup, resource, verbs]: what each identity may do, and nothing more. */
type Grant = [group: string, resource: string, verbs: string];
const releases = Kinds.PluginRelease.plural;
const activations = Kinds.PluginActivation.plural;
const expectedGrants: Record<
  string,
  { kind: 'ClusterRole' | 'Role'; serviceAccount: string; grants: Grant[] }
> = {
  'plugin-release-controller': {
    kind: 'ClusterRole',
    serviceAccount: 'plugin-release-controller',
    grants: [
      [GROUP, releases, 'list watch'],
      [GROUP, `${releases}/status`, 'patch'],
      [GROUP, activations, 'list watch create update patch delete'],
      ['', 'nodes', 'list watch'],
      ['', 'events', 'create patch'],
    ],
  },
  'plugin-release-leader-election': {
    kind: 'Role',
    serviceAccount: 'plugin-release-controller',
    grants: [['coordination.k8s.io', 'leases', 'get create update']],
  },
  'plugin-release-agent': {
    kind: 'ClusterRole',
    serviceAccount: 'plugin-release-agent',
    grants: [
      [GROUP, activations, 'list watch'],
      [GROUP, `${activations}/status`, 'patch'],
      ['', 'events', 'create patch'],
    ],
  },
};

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}
type RoleObject = KubeObject & { rules: Rule[] };
type Binding = KubeObject & {
  roleRef: { kind: string; name: string };
  subjects: Array<{ kind: string; name: string; namespace?: string }>;
};

const flatten = (rules: Rule[]) =>
  rules
    .flatMap((r) =>
      (r.apiGroups ?? []).flatMap((g) =>
        (r.resources ?? []).flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`)),
      ),
    )
    .sort();
const expand = (grants: Grant[]) =>
  grants.flatMap(([g, r, verbs]) => verbs.split(' ').map((v) => `${g}|${r}|${v}`)).sort();

describe('RBAC', () => {
  const roles = objects.filter((o): o is RoleObject => o.kind === 'ClusterRole' || o.kind === 'Role');
  const bindings = objects.filter(
    (o): o is Binding => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding',
  );

  it('defines exactly the roles in the table, no other', () => {
    expect(roles.map((r) => `${r.kind}/${r.metadata.name}`).sort()).toEqual(
      Object.entries(expectedGrants)
        .map(([name, e]) => `${e.kind}/${name}`)
        .sort(),
    );
  });

  it.each(Object.entries(expectedGrants))('%s grants exactly its table rows', (name, expected) => {
    const role = roles.find((r) => r.metadata.name === name)!;
    expect(flatten(role.rules)).toEqual(expand(expected.grants));
  });

  it('uses no wildcard, resourceNames or non-resource URL', () => {
    for (const rule of roles.flatMap((r) => r.rules)) {
      expect([...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs]).not.toContain('*');
      expect(rule.resourceNames).toBeUndefined();
      expect(rule.nonResourceURLs).toBeUndefined();
    }
  });

  it('keeps the Lease grant inside the controller namespace', () => {
    expect(find('Role', 'plugin-release-leader-election').metadata.namespace).toBe(NAMESPACE);
  });

  it.each(Object.entries(expectedGrants))('%s is bound to its ServiceAccount only', (name, expected) => {
    const bound = bindings.filter((b) => b.roleRef.name === name && b.roleRef.kind === expected.kind);
    expect(bound).toHaveLength(1);
    expect(bound[0]!.subjects).toEqual([
      { kind: 'ServiceAccount', name: expected.serviceAccount, namespace: NAMESPACE },
    ]);
  });

  it('binds nothing but the roles above (no built-in role such as cluster-admin)', () => {
    for (const b of bindings) expect(Object.keys(expectedGrants)).toContain(b.roleRef.name);
  });

  it('gives each workload the ServiceAccount its roles are bound to', () => {
    expect(controller.spec.template.spec.serviceAccountName).toBe('plugin-release-controller');
    expect(agent.spec.template.spec.serviceAccountName).toBe('plugin-release-agent');
  });

  it('names resources the CRDs serve', () => {
    const crds = objects.filter((o) => o.kind === 'CustomResourceDefinition') as Array<
      KubeObject & { spec: { group: string; names: { plural: string } } }
    >;
    const served = new Set(crds.flatMap((c) => [c.spec.names.plural, `${c.spec.names.plural}/status`]));
    for (const rule of roles.flatMap((r) => r.rules).filter((r) => r.apiGroups?.includes(GROUP)))
      for (const res of rule.resources ?? []) expect(served.has(res), res).toBe(true);
  });
});
