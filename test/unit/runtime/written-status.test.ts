// Read-your-own-writes: what a writer last wrote wins over a lagging cache, for that object and generation only.
import { describe, expect, it } from 'vitest';
import { type StatusHolder, WrittenStatus } from '../../../src/runtime/written-status.ts';

interface S {
  phase: string;
}
const KEY = 'default/echo';
const object = (phase: string, generation = 1, uid = 'uid-1'): StatusHolder<S> => ({
  metadata: { uid, generation },
  status: { phase },
});

/** A writer that wrote `phase` for the object (generation 1, uid-1) whose cache still shows Pending. */
async function afterWriting(phase: string): Promise<WrittenStatus<S>> {
  const written = new WrittenStatus<S>();
  await written.write(KEY, object('Pending'), { phase }, async () => {});
  return written;
}

describe('WrittenStatus.current', () => {
  const cases: {
    name: string;
    given: () => Promise<WrittenStatus<S>>;
    read: StatusHolder<S>;
    want: string;
  }[] = [
    {
      name: 'is the cached status when this writer wrote nothing',
      given: async () => new WrittenStatus<S>(),
      read: object('Pending'),
      want: 'Pending',
    },
    {
      name: 'is what this writer wrote while the cache still shows the older status',
      given: () => afterWriting('Active'),
      read: object('Pending'),
      want: 'Active',
    },
    {
      name: 'is the cached status again once the object has a new generation',
      given: () => afterWriting('Active'),
      read: object('Pending', 2),
      want: 'Pending',
    },
    {
      name: 'is the cached status of a new object under the same name (another uid)',
      given: () => afterWriting('Active'),
      read: object('Pending', 1, 'uid-2'),
      want: 'Pending',
    },
    {
      name: 'is the cached status after forget',
      given: async () => {
        const written = await afterWriting('Active');
        written.forget(KEY);
        return written;
      },
      read: object('Pending'),
      want: 'Pending',
    },
  ];
  it.each(cases)('$name', async ({ given, read, want }) => {
    expect((await given()).current(KEY, read)?.phase).toBe(want);
  });
});

describe('WrittenStatus.write', () => {
  it('skips a status that says what this writer last wrote, though the cache says otherwise', async () => {
    const written = await afterWriting('Active');
    const calls: S[] = [];
    const wrote = await written.write(KEY, object('Pending'), { phase: 'Active' }, async (s) => {
      calls.push(s);
    });
    expect({ wrote, calls }).toEqual({ wrote: false, calls: [] });
  });

  it('writes a status that differs from what it knows, and remembers it', async () => {
    const written = await afterWriting('Probing');
    const calls: S[] = [];
    const wrote = await written.write(KEY, object('Pending'), { phase: 'Active' }, async (s) => {
      calls.push(s);
    });
    expect({ wrote, calls, now: written.current(KEY, object('Pending')) }).toEqual({
      wrote: true,
      calls: [{ phase: 'Active' }],
      now: { phase: 'Active' },
    });
  });

  it('remembers nothing from a write that failed, so the next attempt writes again', async () => {
    const written = new WrittenStatus<S>();
    const failing = written.write(KEY, object('Pending'), { phase: 'Active' }, async () => {
      throw new Error('conflict');
    });
    await expect(failing).rejects.toThrow('conflict');
    expect(written.current(KEY, object('Pending'))?.phase).toBe('Pending');
  });
});
