import type { VqaResult } from '../../chains/types.js';

/**
 * The whole result as plain JSON (absent fields dropped), as the server's `vqa_llm` field carries it: caption,
 * candidates, source, fallbackReason, shortAnswer, timings, usage, models...
 */
export function resultMetadata(result: VqaResult): Record<string, unknown> {
  return JSON.parse(JSON.stringify(result)) as Record<string, unknown>;
}

/**
 * What to append to the text already streamed so that it ends with the final answer. Deltas are provisional: when
 * the LLM's reply breaks off or proves unusable, the answer falls back to the VQA model's and a stream can only
 * append, so the answer follows on its own paragraph (as the server's streams do). The metadata says which is final.
 */
export function correction(streamed: string, answer: string): string {
  if (answer === streamed) return '';
  if (answer.startsWith(streamed)) return answer.slice(streamed.length);
  return streamed ? `\n\n${answer}` : answer;
}
