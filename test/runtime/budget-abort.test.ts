import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreBudget, type CoreBudgetEvent } from '../../dist/src/runtime/core-budget.js';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';

type Vision = Awaited<ReturnType<typeof createVisionModels>>;

describe('a vision run aborted while it waits for the core budget', () => {
  const budget = new CoreBudget({ cores: 2 });
  let vision: Vision;

  beforeAll(async () => {
    vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', coreBudget: budget });
  });

  afterAll(async () => {
    await vision?.dispose();
  });

  it('should leave the queue at its abort, while the cores are still held by another run, and reject with the reason', async () => {
    const events: CoreBudgetEvent[] = [];
    const stop = budget.observe((event) => events.push(event));
    // Another run holds every core: the question's VQA run can only wait.
    const release = await budget.acquire({ cores: 2, label: 'holder' });
    try {
      const controller = new AbortController();
      const image = await readFile(fixtureImage('fishing.jpg'));
      const answer = vision.candidates(image, 'What is in the picture?', { signal: controller.signal });
      const outcome = answer.then(
        () => 'answered',
        (error: unknown) => error,
      );
      await expect.poll(() => events.some((event) => event.type === 'queue' && event.label === 'vqa'), { timeout: 30_000 }).toBe(true);
      controller.abort(new Error('client went away'));
      expect(((await outcome) as Error).message).toBe('client went away');
      // Cancelled before the holder gave anything back: the run did not wait for the next dispatch to notice.
      await expect.poll(() => events.some((event) => event.type === 'cancel' && event.label === 'vqa'), { timeout: 5_000 }).toBe(true);
      expect(budget.available).toBe(0);
      expect(events.some((event) => event.type === 'grant' && event.label === 'vqa')).toBe(false);
    } finally {
      release?.();
      stop();
    }
    // The budget is whole again and the next question is answered.
    expect(budget.available).toBe(2);
    const image = await readFile(fixtureImage('fishing.jpg'));
    const next = await vision.candidates(image, 'What is in the picture?');
    expect(next.candidates.length).toBeGreaterThan(0);
  });
});
