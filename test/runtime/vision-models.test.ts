import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { ModelNotFoundError } from '../../dist/src/errors/index.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';

describe('createVisionModels', () => {
  let vision: Awaited<ReturnType<typeof createVisionModels>>;

  beforeAll(async () => {
    vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle' });
  });

  afterAll(async () => {
    await vision.dispose();
  });

  it('should name the loaded models', () => {
    expect(vision.models).toEqual({ caption: 'tiny-blip', vqa: 'tiny-vle' });
  });

  it('should caption and answer one loaded image concurrently', async () => {
    const image = await vision.loadImage(fixtureImage('fishing.jpg'));
    const [caption, answers] = await Promise.all([vision.caption(image), vision.candidates(image, "What is in the man's hand?", { topK: 3 })]);
    expect(caption.caption.length).toBeGreaterThan(0);
    expect(caption.model).toBe('tiny-blip');
    expect(answers.candidates).toHaveLength(3);
  });

  it('should return the decoded image from its cache when the same bytes come again', async () => {
    const bytes = await readFile(fixtureImage('truck.jpg'));
    const first = await vision.loadImage(bytes);
    const again = await vision.loadImage(Uint8Array.from(bytes));
    const other = await vision.loadImage(fixtureImage('fishing.jpg'));
    expect(again).toBe(first);
    expect(other.hash).not.toBe(first.hash);
  });

  it('should decode every time when the decoded-image cache is off', async () => {
    const uncached = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', decodedImageCacheBytes: 0, workers: 0 });
    try {
      const first = await uncached.loadImage(fixtureImage('truck.jpg'));
      const again = await uncached.loadImage(fixtureImage('truck.jpg'));
      expect(again).not.toBe(first);
      expect(again.hash).toBe(first.hash);
    } finally {
      await uncached.dispose();
    }
  });

  it('should fail with the missing model named when one of the two is missing', async () => {
    const error = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'no-such-vqa', offline: true }).catch((caught: unknown) => caught);
    expect(ModelNotFoundError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('no-such-vqa');
  });
});
