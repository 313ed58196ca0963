import { applyMinNewTokens, applyRepetitionPenalty, logSoftmax } from './logits.js';
import type { SearchOptions, SearchResult, StepDecoder } from './types.js';

interface Hypothesis {
  tokens: number[];
  score: number;
}

/** Keeps the best `size` finished hypotheses, as Hugging Face's BeamHypotheses does. */
class Hypotheses {
  readonly items: Hypothesis[] = [];
  constructor(private readonly size: number) {}

  get worst(): number {
    return this.items.reduce((worst, item) => Math.min(worst, item.score), Number.POSITIVE_INFINITY);
  }

  add(tokens: number[], score: number): void {
    if (this.items.length < this.size || score > this.worst) {
      this.items.push({ tokens, score });
      if (this.items.length > this.size) {
        let worstIndex = 0;
        for (let index = 1; index < this.items.length; index += 1) if (this.items[index]!.score < this.items[worstIndex]!.score) worstIndex = index;
        this.items.splice(worstIndex, 1);
      }
    }
  }

  best(): Hypothesis {
    // The earliest added wins ties: reduce keeps the first of equal scores.
    return this.items.reduce((best, item) => (item.score > best.score ? item : best));
  }
}

/** Beam search (models/GENERATION.md, "Beam search"): processors act on log-probabilities. */
export async function beamSearch(decoder: StepDecoder, options: SearchOptions): Promise<SearchResult> {
  const beamCount = options.numBeams;
  const lengthPenalty = options.lengthPenalty ?? 1;
  const prompt = options.promptIds;
  let beams: number[][] = Array.from({ length: beamCount }, () => [...prompt]);
  // Only the first beam is live at the start, so the first step does not pick the same token N times.
  let beamScores: number[] = Array.from({ length: beamCount }, (_, index) => (index === 0 ? 0 : -1e9));
  const hypotheses = new Hypotheses(beamCount);
  let input: number[][] = beams.map((beam) => [...beam]);
  let steps = 0;
  let stoppedEarly = false;

  for (let step = 0; step < options.maxNewTokens; step += 1) {
    if (options.isCancelled?.()) break;
    const logits = await decoder.step(input);
    steps += 1;
    const vocabulary = logits[0]!.length;
    const candidates: { score: number; beam: number; token: number }[] = [];
    for (let beam = 0; beam < beamCount; beam += 1) {
      const scores = logSoftmax(logits[beam]!);
      applyRepetitionPenalty(scores, beams[beam]!, options.repetitionPenalty);
      applyMinNewTokens(scores, step, options.minNewTokens, options.eosTokenId);
      collectTop(candidates, scores, beamScores[beam]!, beam, 2 * beamCount);
    }
    candidates.sort((left, right) => right.score - left.score || left.beam * vocabulary + left.token - (right.beam * vocabulary + right.token));

    const next: { tokens: number[]; score: number; beam: number }[] = [];
    for (let rank = 0; rank < candidates.length && next.length < beamCount; rank += 1) {
      const { score, beam, token } = candidates[rank]!;
      if (token === options.eosTokenId) {
        if (rank < beamCount) hypotheses.add([...beams[beam]!.slice(prompt.length), token], score / (step + 1) ** lengthPenalty);
      } else {
        next.push({ tokens: [...beams[beam]!, token], score, beam });
      }
    }
    beams = next.map((item) => item.tokens);
    beamScores = next.map((item) => item.score);
    decoder.reorder(next.map((item) => item.beam));
    input = next.map((item) => [item.tokens[item.tokens.length - 1]!]);

    const bestRunning = Math.max(...beamScores) / (step + 1) ** lengthPenalty;
    if (hypotheses.items.length === beamCount && hypotheses.worst >= bestRunning) {
      stoppedEarly = true;
      break;
    }
  }
  if (!stoppedEarly) {
    const length = Math.max(1, beams[0]!.length - prompt.length);
    for (let beam = 0; beam < beams.length; beam += 1) hypotheses.add(beams[beam]!.slice(prompt.length), beamScores[beam]! / length ** lengthPenalty);
  }
  return { tokenIds: hypotheses.best().tokens, steps };
}

/** Adds a row's `count` best (score + beamScore) entries to `into`: the global top 2N is among them. */
function collectTop(into: { score: number; beam: number; token: number }[], scores: Float64Array, beamScore: number, beam: number, count: number): void {
  const top: { score: number; beam: number; token: number }[] = [];
  for (let token = 0; token < scores.length; token += 1) {
    const score = scores[token]! + beamScore;
    if (top.length < count) {
      top.push({ score, beam, token });
      if (top.length === count) top.sort((left, right) => right.score - left.score || left.token - right.token);
    } else if (score > top[count - 1]!.score) {
      let position = count - 1;
      while (position > 0 && top[position - 1]!.score < score) position -= 1;
      top.splice(position, 0, { score, beam, token });
      top.pop();
    }
  }
  into.push(...top);
}
