import { describe, expect, it } from 'vitest';
import { benchStageThreads } from '../../dist/bench/stage-threads.js';
import { modelsDir, root } from '../helpers/fixtures.js';
import { join } from 'node:path';

describe('benchStageThreads', () => {
  it('should time every graph at each thread count, with the same outputs at each', async () => {
    const result = await benchStageThreads({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', image: join(root, 'test', 'fixtures', 'eval', 'dogs.jpg'), threads: [1, 2], iterations: 2 });
    expect(Object.keys(result.threads)).toEqual(['1', '2']);
    expect(result.questionTokens).toBeGreaterThan(2);
    for (const times of Object.values(result.threads)) {
      for (const stage of ['captionVision', 'crossAttention', 'decoder', 'vqaVision', 'fusion'] as const) expect(times[stage], stage).toBeGreaterThan(0);
      expect(times.decoderSteps).toBeGreaterThan(0);
      expect(times.decoderStep).toBeLessThanOrEqual(times.decoder);
    }
    // The tiny models' caption and top answer do not depend on the thread count.
    expect(result.outputs['1']).toBe(result.outputs['2']);
  });
});
