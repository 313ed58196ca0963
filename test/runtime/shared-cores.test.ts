import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { InvalidOptionError } from '../../dist/src/errors/index.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';

type Vision = Awaited<ReturnType<typeof createVisionModels>>;

const images = ['fishing.jpg', 'truck.jpg'];
const questions = ["What is in the man's hand?", 'What colour is it?'];

async function answerAll(vision: Vision): Promise<string[]> {
  const bytes = await Promise.all(images.map((name) => readFile(fixtureImage(name))));
  // Every question at once: under the budget they queue, under the split they overlap.
  const results = await Promise.all(
    bytes.flatMap((image) =>
      questions.map(async (question) => {
        const [caption, answers] = await Promise.all([vision.caption(image), vision.candidates(image, question, { topK: 3 })]);
        return JSON.stringify([caption.caption, caption.tokenIds, answers.candidates]);
      }),
    ),
  );
  return results;
}

describe('createVisionModels sharing one core budget', () => {
  let budget: Vision;
  let split: Vision;

  beforeAll(async () => {
    [budget, split] = await Promise.all([
      createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', scheduling: 'budget', cores: 2 }),
      createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', scheduling: 'split', cores: 2, sessionOptions: { allowSpinning: true } }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([budget?.dispose(), split?.dispose()]);
  });

  it('should give the same captions, token ids and scores as models with threads of their own', async () => {
    const [shared, separate] = [await answerAll(budget), await answerAll(split)];
    expect(shared).toEqual(separate);
  });

  it('should give a question cancelled while it waits for cores no result and keep answering others', async () => {
    budget.clearCache();
    const image = await readFile(fixtureImage('truck.jpg'));
    const other = await readFile(fixtureImage('fishing.jpg'));
    const controller = new AbortController();
    const running = budget.candidates(other, 'What is it?');
    const waiting = budget.candidates(image, 'What is it?', { signal: controller.signal });
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    const [done, after] = await Promise.all([running, budget.candidates(image, 'What is it?')]);
    expect(done.candidates.length).toBeGreaterThan(0);
    expect(after.imageCached).toBe(false);
  });

  it('should refuse an unknown scheduling', async () => {
    const error = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', scheduling: 'fifo' as 'budget' }).catch((caught: unknown) => caught);
    expect(InvalidOptionError.isInstance(error)).toBe(true);
  });
});
