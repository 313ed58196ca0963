import { describe, expect, it } from 'vitest';
import { measureMatmulCeiling } from '../../dist/bench/matmul-ceiling.js';

describe('measureMatmulCeiling', () => {
  it('should time every shape in every round on a real onnxruntime session', async () => {
    const ceiling = await measureMatmulCeiling({ threads: 1, rounds: 3, shapes: [[64, 128, 96], [32, 64, 256]] });
    expect(Object.keys(ceiling.shapes)).toEqual(['64x128x96', '32x64x256']);
    expect(ceiling.rounds).toBe(3);
    for (const shape of Object.values(ceiling.shapes)) {
      expect(shape.median).toBeGreaterThan(0);
      expect(shape.best).toBeGreaterThanOrEqual(shape.median);
    }
    expect(ceiling.best).toBeGreaterThanOrEqual(ceiling.median);
    expect(['64x128x96', '32x64x256']).toContain(ceiling.bestShape);
  });

  it('should refuse a round count that measures nothing', async () => {
    await expect(measureMatmulCeiling({ threads: 1, rounds: 0 })).rejects.toThrow(/rounds/);
  });
});
