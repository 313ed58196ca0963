import { describe, expect, it } from 'vitest';
import { deferVisionModels } from '../../dist/src/runtime/deferred-vision-models.js';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { createReadinessProbe } from '../../dist/src/server/readiness.js';
import { ModelNotFoundError } from '../../dist/src/errors/index.js';
import type { VisionModels } from '../../dist/src/types.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';

describe('deferVisionModels', () => {
  it('should report loading until the models have loaded, then answer and turn ready', async () => {
    let finishLoading!: (vision: VisionModels) => void;
    const loading = new Promise<VisionModels>((resolve) => (finishLoading = resolve));
    const vision = deferVisionModels(loading, { caption: 'tiny-blip', vqa: 'tiny-vle' });
    const readiness = createReadinessProbe(vision);

    expect(vision.loaded).toBe(false);
    expect(vision.models).toEqual({ caption: 'tiny-blip', vqa: 'tiny-vle' });
    expect(await readiness.check()).toMatchObject({ ready: false, reason: 'loading' });
    const early = vision.candidates(fixtureImage('truck.jpg'), 'How many people are there?', { topK: 2 });

    const real = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle' });
    finishLoading(real);
    try {
      expect((await early).candidates).toHaveLength(2);
      expect(await readiness.settled()).toMatchObject({ ready: true });
      expect(vision.loaded).toBe(true);
    } finally {
      await vision.dispose();
    }
  });

  it('should fail every call with the load error when loading fails, and still dispose cleanly', async () => {
    const loading = createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'no-such-vqa', offline: true });
    const vision = deferVisionModels(loading, { caption: 'tiny-blip', vqa: 'no-such-vqa' });
    await expect(vision.caption(fixtureImage('truck.jpg'))).rejects.toSatisfy(ModelNotFoundError.isInstance);
    const readiness = createReadinessProbe(vision);
    const state = await readiness.settled();
    expect(state.ready).toBe(false);
    expect(state.reason).toContain('no-such-vqa');
    await expect(vision.dispose()).resolves.toBeUndefined();
  });
});
