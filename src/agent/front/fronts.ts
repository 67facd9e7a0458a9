// The node's fronts as the engine sees them: open one per plugin address, switch its backend, read what it
// saw of real traffic. Two holders implement it: LocalFronts (in this process, for try-activate, tests and
// the benchmarks' baseline) and the keeper (keeper.ts: a separate long-lived process the agent drives over
// a control socket, so the fronts outlive the agent's crash, restart and upgrade).
import type { Logger } from 'pino';
import { type Backend, Front, type RouteStats } from './index.ts';

/** One stable front, wherever it is held. */
export interface FrontHandle {
  readonly address: string;
  /** Routes new connections to `backend` (undefined: refuse them); `drained` waits for the old ones. */
  switchTo(backend: Backend | undefined): Promise<FrontSwitch>;
  /** The current backend and what the front saw of its traffic since it became the backend. */
  state(): Promise<{ backend?: Backend; stats?: RouteStats }>;
  /** Stops listening and closes every connection through this front. */
  close(): Promise<void>;
}

export interface FrontSwitch {
  previous: Backend | undefined;
  /** Resolves once the previous backend's connections closed; destroys the rest after timeoutMs. */
  drained(timeoutMs: number): Promise<void>;
}

/** Every front on the node. */
export interface Fronts {
  /** Opens the front at `address`, or returns the one already listening there (with its backend). */
  open(address: string): Promise<FrontHandle>;
  /** Every open front and its backend (to refuse a candidate that announces someone else's address). */
  list(): Promise<{ address: string; backend?: Backend }[]>;
  /**
   * Lets go of the fronts: local ones close; the keeper's keep serving without this agent. `done`: the
   * agent stopped every plugin, so a keeper left holding no front exits now instead of idling out.
   */
  detach(done?: boolean): Promise<void>;
}

/** Fronts in this process: they live and die with it. */
export class LocalFronts implements Fronts {
  readonly #logger: Logger;
  readonly #holdMs: number | undefined;
  readonly #fronts = new Map<string, Front>();

  constructor(logger: Logger, options: { holdMs?: number } = {}) {
    this.#logger = logger;
    this.#holdMs = options.holdMs;
  }

  /** The Front itself (the keeper serves it; tests inspect it). */
  async openFront(address: string, replace = false): Promise<Front> {
    const existing = this.#fronts.get(address);
    if (existing) return existing;
    const front = await Front.listen(address, this.#logger, {
      ...(this.#holdMs !== undefined ? { holdMs: this.#holdMs } : {}),
      replace,
    });
    this.#fronts.set(front.address, front);
    return front;
  }

  async open(address: string): Promise<FrontHandle> {
    const front = await this.openFront(address);
    return {
      address: front.address,
      switchTo: async (backend) => front.switchTo(backend),
      state: async () => front.state(),
      close: () => this.closeFront(front.address),
    };
  }

  get(address: string): Front | undefined {
    return this.#fronts.get(address);
  }

  all(): Front[] {
    return [...this.#fronts.values()];
  }

  async closeFront(address: string): Promise<void> {
    const front = this.#fronts.get(address);
    this.#fronts.delete(address);
    await front?.close();
  }

  async list(): Promise<{ address: string; backend?: Backend }[]> {
    return this.all().map((f) => ({ address: f.address, ...(f.backend ? { backend: f.backend } : {}) }));
  }

  async detach(): Promise<void> {
    await Promise.all(this.all().map((f) => this.closeFront(f.address)));
  }
}
