import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { CoreBudget, sharedCoreBudget, type CoreRelease } from '../../dist/src/runtime/core-budget.js';
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

  it('should take a run whose signal aborts out of the queue at once, starting the narrower runs it blocked', async () => {
    const budget = new CoreBudget({ cores: 2 });
    const first = (await budget.acquire({ cores: 1 }))!;
    const controller = new AbortController();
    const wide = budget.acquire({ cores: 2, signal: controller.signal });
    let narrowStarted = false;
    const narrow = budget.acquire({ cores: 1 }).then((release) => {
      narrowStarted = true;
      return release;
    });
    await tick();
    expect(narrowStarted).toBe(false);
    controller.abort();
    await expect(wide).resolves.toBeUndefined();
    const release = (await narrow)!;
    expect(budget.available).toBe(0);
    expect(budget.waiting).toBe(0);
    release();
    first();
    expect(budget.available).toBe(2);
  });

  it('should give nothing to a request whose signal has already aborted', async () => {
    const budget = new CoreBudget({ cores: 1 });
    await expect(budget.acquire({ cores: 1, signal: AbortSignal.abort() })).resolves.toBeUndefined();
    expect(budget.available).toBe(1);
    expect(budget.waiting).toBe(0);
  });

  it('should tell its observers each request queued, granted, released and cancelled, in order, with its label', async () => {
    const budget = new CoreBudget({ cores: 1 });
    const events: string[] = [];
    const stop = budget.observe((event) => events.push(`${event.type} ${event.label} ${event.available}/${event.waiting}`));
    const llm = (await budget.acquire({ cores: 1, label: 'llm' }))!;
    const controller = new AbortController();
    const gone = budget.acquire({ cores: 1, label: 'caption', signal: controller.signal });
    const vqa = budget.acquire({ cores: 1, label: 'vqa' });
    controller.abort();
    await gone;
    llm();
    (await vqa)!();
    stop();
    (await budget.acquire({ cores: 1, label: 'unseen' }))!();
    expect(events).toEqual([
      'queue llm 1/1',
      'grant llm 0/0',
      'queue caption 0/1',
      'queue vqa 0/2',
      'cancel caption 0/1',
      'release llm 1/1',
      'grant vqa 0/0',
      'release vqa 1/0',
    ]);
  });

  it('should be one budget for the whole process, of every core', () => {
    expect(sharedCoreBudget()).toBe(sharedCoreBudget());
    expect(sharedCoreBudget().cores).toBe(availableParallelism());
  });

  it('should refuse a budget of no cores', () => {
    expect(() => new CoreBudget({ cores: 0 })).toThrow(InvalidOptionError);
    expect(() => new CoreBudget({ cores: 1.5 })).toThrow(/cores must be an integer/);
  });
});
