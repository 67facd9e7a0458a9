// forEachLimited: every item once, never more than the limit at once, the first error wins.
import { describe, expect, it } from 'vitest';
import { forEachLimited } from '../../../src/runtime/concurrency.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 1));

describe('forEachLimited', () => {
  it.each([
    { items: 0, limit: 4 },
    { items: 3, limit: 8 },
    { items: 50, limit: 4 },
  ])('handles $items items with at most $limit at once', async ({ items, limit }) => {
    let running = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachLimited(
      Array.from({ length: items }, (_, i) => i),
      limit,
      async (i) => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        seen.push(i);
        running--;
      },
    );
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: items }, (_, i) => i));
    expect(peak).toBe(Math.min(items, limit));
  });

  it('rejects with the first error and starts nothing after it', async () => {
    const started: number[] = [];
    const run = forEachLimited([1, 2, 3, 4, 5, 6], 2, async (i) => {
      started.push(i);
      await tick();
      if (i === 2) throw new Error('boom');
    });
    await expect(run).rejects.toThrow('boom');
    expect(started).toEqual([1, 2, 3]);
  });
});
