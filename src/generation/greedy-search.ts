import { applyMinNewTokens, applyRepetitionPenalty, argmax } from './logits.js';
import type { SearchOptions, SearchResult, StepDecoder } from './types.js';

/** Greedy decoding (models/GENERATION.md, "Greedy"): processors act on the raw logits. */
export async function greedySearch(decoder: StepDecoder, options: SearchOptions): Promise<SearchResult> {
  const sequence = [...options.promptIds];
  const generated: number[] = [];
  let input = [options.promptIds];
  let steps = 0;
  while (generated.length < options.maxNewTokens) {
    if (options.isCancelled?.()) break;
    const [logits] = await decoder.step(input);
    steps += 1;
    const scores = Float32Array.from(logits!);
    applyRepetitionPenalty(scores, sequence, options.repetitionPenalty);
    applyMinNewTokens(scores, generated.length, options.minNewTokens, options.eosTokenId);
    const token = argmax(scores);
    sequence.push(token);
    generated.push(token);
    if (token === options.eosTokenId) break;
    input = [[token]];
  }
  return { tokenIds: generated, steps };
}
