// The controllers a real control plane runs that change API semantics: the garbage collector
// (ownerReferences: background cascade, foreground and orphan deletion, dangling references) and
// the namespace controller (deletes a Terminating namespace's content, then the namespace).
import type { Api } from './api.ts';
import type { KubeObject, ResourceType } from './resources.ts';
import { ApiError } from './status.ts';
import type { Entry, Store, StoreEvent } from './store.ts';

/** The field manager of the controllers' writes, as kube-controller-manager's are named. */
const CONTROLLER_MANAGER = 'kube-controller-manager';

/** How many objects one tick of the controllers touches before yielding to the event loop. */
const BATCH = 200;

export class Controllers {
  readonly #api: Api;
  readonly #store: Store;
  /** Work items, deduplicated: `o:<storage>\n<key>` (check an object), `n:<namespace>`. */
  readonly #queue = new Set<string>();
  #scheduled = false;
  #stopped = false;
  readonly #unsubscribe: () => void;
  readonly #log: (message: string, error: unknown) => void;

  constructor(api: Api, log: (message: string, error: unknown) => void = () => {}) {
    this.#api = api;
    this.#store = api.store;
    this.#log = log;
    this.#unsubscribe = this.#store.subscribeAll((event) => this.#observe(event));
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe();
  }

  /** Resolves once the queue is empty (tests; the CLI never waits). */
  async idle(): Promise<void> {
    while (this.#queue.size > 0 || this.#scheduled) await new Promise((r) => setImmediate(r));
  }

  #observe(event: StoreEvent) {
    const { entry } = event;
    const meta = entry.object.metadata;
    if (event.type === 'DELETED') {
      // Its dependents may now be orphans of a vanished owner.
      if (meta.uid)
        for (const dependent of this.#store.dependentsOf(meta.uid)) this.#enqueueObject(dependent);
      // An owner waiting in foreground deletion re-checks when one of its dependents goes.
      for (const ref of meta.ownerReferences ?? []) {
        const owner = this.#store.byUidLookup(ref.uid);
        if (owner?.object.metadata.deletionTimestamp) this.#enqueueObject(owner);
      }
      if (meta.namespace) {
        const ns = this.#store.get('/namespaces', meta.namespace);
        if (ns?.object.metadata.deletionTimestamp) this.#enqueue(`n:${meta.namespace}`);
      }
      return;
    }
    // Ownership needs a look when references appear or change, not on every status update.
    const refsChanged =
      event.type === 'ADDED' ||
      JSON.stringify(meta.ownerReferences) !== JSON.stringify(event.prev?.object.metadata.ownerReferences);
    if (meta.ownerReferences?.length && refsChanged) this.#enqueueObject(entry);
    if (meta.deletionTimestamp) {
      if (meta.finalizers?.includes('foregroundDeletion') || meta.finalizers?.includes('orphan'))
        this.#enqueueObject(entry);
      if (entry.storage === '/namespaces') this.#enqueue(`n:${meta.name}`);
    }
  }

  #enqueueObject(entry: Entry) {
    this.#enqueue(`o:${entry.storage}\n${entry.key}`);
  }

  #enqueue(item: string) {
    if (this.#stopped) return;
    this.#queue.add(item);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
  }

  #drain() {
    this.#scheduled = false;
    let budget = BATCH;
    for (const item of this.#queue) {
      if (budget-- <= 0) break;
      this.#queue.delete(item);
      try {
        if (item.startsWith('n:')) this.#finalizeNamespace(item.slice(2));
        else {
          const [storage, key] = item.slice(2).split('\n') as [string, string];
          const entry = this.#store.get(storage, key);
          if (entry) this.#processObject(entry);
        }
      } catch (error) {
        if (!(error instanceof ApiError && (error.code === 404 || error.code === 409)))
          this.#log(`controller: ${item}`, error);
      }
    }
    if (this.#queue.size > 0 && !this.#scheduled && !this.#stopped) {
      this.#scheduled = true;
      setImmediate(() => this.#drain());
    }
  }

  #typeOf(entry: Entry): ResourceType | undefined {
    const o = entry.object;
    return this.#api.types.forKind(o.apiVersion ?? '', o.kind ?? '');
  }

  /** The live owner a reference names: same uid, and the kind/name it claims. */
  #ownerOf(dependent: KubeObject, ref: { uid: string; kind: string; name: string }): Entry | undefined {
    const owner = this.#store.byUidLookup(ref.uid);
    if (!owner) return undefined;
    const o = owner.object;
    if (o.kind !== ref.kind || o.metadata.name !== ref.name) return undefined;
    if (o.metadata.namespace && o.metadata.namespace !== dependent.metadata.namespace) return undefined;
    return owner;
  }

  #processObject(entry: Entry) {
    const type = this.#typeOf(entry);
    if (!type) return;
    const meta = entry.object.metadata;
    if (meta.deletionTimestamp && meta.finalizers?.includes('orphan'))
      return this.#orphanDependents(entry, type);
    if (meta.deletionTimestamp && meta.finalizers?.includes('foregroundDeletion'))
      return this.#deleteDependentsInForeground(entry, type);
    this.#collectIfOrphaned(entry, type);
  }

  /** A dependent whose owners are all gone is deleted; dangling references beside live owners are removed. */
  #collectIfOrphaned(entry: Entry, type: ResourceType) {
    const refs = entry.object.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;
    const dangling = refs.filter((ref) => !this.#ownerOf(entry.object, ref));
    if (dangling.length === 0) return;
    const meta = entry.object.metadata;
    if (dangling.length === refs.length) {
      if (meta.deletionTimestamp) return;
      this.#api.delete(type, meta.namespace, meta.name!, { propagationPolicy: 'Background' });
      return;
    }
    const keep = refs.filter((ref) => !dangling.includes(ref));
    this.#rewrite(entry, type, (o) => {
      o.metadata.ownerReferences = keep;
    });
  }

  #orphanDependents(owner: Entry, type: ResourceType) {
    const uid = owner.object.metadata.uid!;
    for (const dependent of this.#store.dependentsOf(uid)) {
      const dependentType = this.#typeOf(dependent);
      if (!dependentType) continue;
      this.#rewrite(dependent, dependentType, (o) => {
        o.metadata.ownerReferences = (o.metadata.ownerReferences ?? []).filter((r) => r.uid !== uid);
      });
    }
    this.#removeFinalizer(owner, type, 'orphan');
  }

  #deleteDependentsInForeground(owner: Entry, type: ResourceType) {
    const dependents = this.#store.dependentsOf(owner.object.metadata.uid!);
    if (dependents.length === 0) {
      this.#removeFinalizer(owner, type, 'foregroundDeletion');
      return;
    }
    for (const dependent of dependents) {
      const dependentType = this.#typeOf(dependent);
      const meta = dependent.object.metadata;
      if (!dependentType || meta.deletionTimestamp) continue;
      this.#api.delete(dependentType, meta.namespace, meta.name!, { propagationPolicy: 'Foreground' });
    }
  }

  #removeFinalizer(entry: Entry, type: ResourceType, finalizer: string) {
    this.#rewrite(entry, type, (o) => {
      o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    });
  }

  /** An update as a controller would send it: read-modify-write of the latest version. */
  #rewrite(entry: Entry, type: ResourceType, mutate: (o: KubeObject) => void) {
    const latest = this.#store.get(entry.storage, entry.key);
    if (!latest) return;
    const object = structuredClone(latest.object);
    mutate(object);
    this.#api.commitUpdate(type, latest, object, [], { fieldManager: CONTROLLER_MANAGER });
  }

  /** Deletes everything in a Terminating namespace; once empty, clears its finalizer and removes it. */
  #finalizeNamespace(name: string) {
    const ns = this.#store.get('/namespaces', name);
    if (!ns?.object.metadata.deletionTimestamp) return;
    let remaining = 0;
    let budget = BATCH;
    const prefix = `${name}/`;
    for (const type of this.#api.types.all) {
      if (!type.namespaced || type.fromStorage) continue;
      for (const entry of this.#store.table(type.storage).values()) {
        if (!entry.key.startsWith(prefix)) continue;
        remaining++;
        if (entry.object.metadata.deletionTimestamp || budget <= 0) continue;
        budget--;
        this.#api.delete(type, name, entry.object.metadata.name!, { propagationPolicy: 'Background' });
      }
    }
    if (remaining > 0) {
      if (budget <= 0) this.#enqueue(`n:${name}`);
      return;
    }
    const namespaces = this.#api.types.lookup('', 'v1', 'namespaces')!;
    const latest = this.#store.get('/namespaces', name)!;
    const object = structuredClone(latest.object);
    object.spec = { ...(object.spec as object), finalizers: [] };
    // The namespace controller finalizes through /finalize; the commit deletes once nothing is pending.
    this.#api.commitUpdate(namespaces, latest, object, [], {
      subresource: 'finalize',
      fieldManager: CONTROLLER_MANAGER,
    });
  }
}
