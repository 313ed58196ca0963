import { describe, expect, it } from 'vitest';
import { beamSearch } from '../../dist/src/generation/beam-search.js';
import { greedySearch } from '../../dist/src/generation/greedy-search.js';
import type { StepDecoder } from '../../dist/src/generation/types.js';

/**
 * A decoder whose next-token logits depend only on the sequence so far, given as a table: the search logic is
 * the thing under test here, the real decoder has its own conformance tests against PyTorch.
 */
class TableDecoder implements StepDecoder {
  rows: number[][] = [];
  reorders: number[][] = [];
  constructor(private readonly table: (sequence: number[]) => number[]) {}

  async step(newTokens: number[][]): Promise<Float32Array[]> {
    this.rows = this.rows.length === 0 ? newTokens.map((tokens) => [...tokens]) : this.rows.map((row, index) => [...row, ...newTokens[index]!]);
    return this.rows.map((row) => Float32Array.from(this.table(row)));
  }

  reorder(rows: number[]): void {
    this.reorders.push(rows);
    this.rows = rows.map((row) => [...this.rows[row]!]);
  }
}

const eos = 3;
const base = { promptIds: [0], eosTokenId: eos, maxNewTokens: 6, minNewTokens: 0, repetitionPenalty: 1, numBeams: 1 };

describe('greedySearch', () => {
  it('should stop at eos and include it', async () => {
    const decoder = new TableDecoder((sequence) => (sequence.length < 3 ? [0, 0, 5, 1] : [0, 0, 1, 5]));
    const result = await greedySearch(decoder, base);
    expect(result.tokenIds).toEqual([2, 2, eos]);
  });

  it('should not end before minNewTokens', async () => {
    const decoder = new TableDecoder(() => [0, 1, 0, 5]);
    const result = await greedySearch(decoder, { ...base, minNewTokens: 2 });
    expect(result.tokenIds).toEqual([1, 1, eos]);
  });

  it('should apply the repetition penalty to tokens already in the sequence, prompt included', async () => {
    // With penalty 4 the prompt's 0 drops from 8 to 2, so 1 (4) wins; then 1 drops to 1 and 0 (2) wins again.
    const decoder = new TableDecoder(() => [8, 4, 1.5, -1]);
    const plain = await greedySearch(decoder, { ...base, maxNewTokens: 2 });
    expect(plain.tokenIds).toEqual([0, 0]);
    const penalised = await greedySearch(new TableDecoder(() => [8, 4, 1.5, -1]), { ...base, maxNewTokens: 3, repetitionPenalty: 4 });
    expect(penalised.tokenIds).toEqual([1, 0, 0]);
  });

  it('should stop between steps when cancelled', async () => {
    let steps = 0;
    const decoder = new TableDecoder(() => [0, 0, 5, 1]);
    const result = await greedySearch(decoder, { ...base, maxNewTokens: 50, isCancelled: () => ++steps > 2 });
    expect(result.steps).toBe(2);
  });
});

describe('beamSearch', () => {
  it('should find a sequence greedy misses', async () => {
    // Greedy takes 1 (p=.5) then a flat distribution; beam search prefers 2 (p=.4) followed by a sure eos.
    const table = (sequence: number[]): number[] => {
      const last = sequence[sequence.length - 1];
      if (sequence.length === 1) return [Math.log(0.05), Math.log(0.5), Math.log(0.4), Math.log(0.05)];
      if (last === 2) return [-20, -20, -20, 0];
      if (last === eos) return [0, 0, 0, 0];
      return [Math.log(0.25), Math.log(0.25), Math.log(0.25), Math.log(0.25)];
    };
    const greedy = await greedySearch(new TableDecoder(table), { ...base, maxNewTokens: 2 });
    expect(greedy.tokenIds[0]).toBe(1);
    const decoder = new TableDecoder(table);
    const beam = await beamSearch(decoder, { ...base, numBeams: 2, maxNewTokens: 4 });
    expect(beam.tokenIds).toEqual([2, eos]);
    expect(decoder.reorders.length).toBeGreaterThan(0);
  });

  it('should return the best running beam when no beam reaches eos', async () => {
    const decoder = new TableDecoder(() => [Math.log(0.1), Math.log(0.6), Math.log(0.3), -30]);
    const result = await beamSearch(decoder, { ...base, numBeams: 3, maxNewTokens: 3 });
    expect(result.tokenIds).toEqual([1, 1, 1]);
  });
});
