// Logits processing shared by greedy and beam search (models/GENERATION.md, "Logits processing").

/** Hugging Face's repetition penalty: every distinct token already in the sequence is made less likely. */
export function applyRepetitionPenalty(scores: Float32Array | Float64Array, sequence: readonly number[], penalty: number): void {
  if (penalty === 1) return;
  for (const token of new Set(sequence)) {
    const score = scores[token]!;
    scores[token] = score < 0 ? score * penalty : score / penalty;
  }
}

/** Forbids eos until `minNewTokens` tokens have been generated. */
export function applyMinNewTokens(scores: Float32Array | Float64Array, generated: number, minNewTokens: number, eosTokenId: number): void {
  if (generated < minNewTokens) scores[eosTokenId] = Number.NEGATIVE_INFINITY;
}

/** log_softmax in float64: beam scores are sums of many of these, so precision matters more than speed. */
export function logSoftmax(logits: Float32Array): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < logits.length; index += 1) if (logits[index]! > max) max = logits[index]!;
  let sum = 0;
  for (let index = 0; index < logits.length; index += 1) sum += Math.exp(logits[index]! - max);
  const logSum = Math.log(sum) + max;
  const result = new Float64Array(logits.length);
  for (let index = 0; index < logits.length; index += 1) result[index] = logits[index]! - logSum;
  return result;
}

/** Index of the largest value; the lowest index among equal maxima. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let index = 1; index < values.length; index += 1) if (values[index]! > values[best]!) best = index;
  return best;
}
