import { describe, expect, it } from 'vitest';
import { CoreBudget, type CoreRelease } from '../../dist/src/runtime/core-budget.js';
import { InvalidOptionError } from '../../dist/src/errors/index.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('CoreBudget', () => {
  it('should never hand out more cores than it has', async () => {
    const budget = new CoreBudget({ cores: 4 });
    let held = 0;
    let most = 0;
    await Promise.all(
      [3, 2, 4, 1, 1, 2, 3].map(async (cores) => {
        const release = (await budget.acquire({ cores }))!;
        held += cores;
        most = Math.max(most, held);
        await tick();
        held -= cores;
        release();
      }),
    );
    expect(most).toBeLessThanOrEqual(4);
    expect(budget.available).toBe(4);
  });

  it('should start waiting runs in the order they arrived', async () => {
    const budget = new CoreBudget({ cores: 2 });
    const first = (await budget.acquire({ cores: 2 }))!;
    const started: string[] = [];
    const runs = ['a', 'b', 'c'].map(async (name) => {
      const release = (await budget.acquire({ cores: 2 }))!;
      started.push(name);
      await tick();
      release();
    });
    first();
    await Promise.all(runs);
    expect(started).toEqual(['a', 'b', 'c']);
  });

  it('should let a run with a lead go ahead of runs queued just before it', async () => {
    const budget = new CoreBudget({ cores: 2 });
    const first = (await budget.acquire({ cores: 2 }))!;
    const started: string[] = [];
    const caption = budget.acquire({ cores: 2 }).then((release) => started.push('caption') && release);
    const vqa = budget.acquire({ cores: 2, leadMs: 200 }).then((release) => started.push('vqa') && release);
    first();
    ((await vqa) as CoreRelease)();
    ((await caption) as CoreRelease)();
    expect(started).toEqual(['vqa', 'caption']);
  });

  it('should clamp a request wider than the budget to the whole budget', async () => {
    const budget = new CoreBudget({ cores: 2 });
    const release = (await budget.acquire({ cores: 16 }))!;
    expect(budget.available).toBe(0);
    release();
    release();
    expect(budget.available).toBe(2);
  });

  it('should drop a run cancelled while it waits, without giving it cores', async () => {
    const budget = new CoreBudget({ cores: 1 });
    const first = (await budget.acquire({ cores: 1 }))!;
    const cancel = new SharedArrayBuffer(4);
    const cancelled = budget.acquire({ cores: 1, cancel });
    const next = budget.acquire({ cores: 1 });
    expect(budget.waiting).toBe(2);
    Atomics.store(new Int32Array(cancel), 0, 1);
    first();
    await expect(cancelled).resolves.toBeUndefined();
    const release = await next;
    expect(budget.available).toBe(0);
    release!();
    expect(budget.available).toBe(1);
  });

  it('should refuse a budget of no cores', () => {
    expect(() => new CoreBudget({ cores: 0 })).toThrow(InvalidOptionError);
    expect(() => new CoreBudget({ cores: 1.5 })).toThrow(/cores must be an integer/);
  });
});
