/**
 * The text that makes what a client has printed equal the final answer. Deltas are provisional: when the LLM's
 * reply breaks off or turns out unusable, the result falls back to the VQA answer, and a stream can only append, so
 * the answer follows on its own paragraph. The result says which answer is authoritative. Shared by the server's
 * streams and the in-process adapters.
 *
 * @example
 * streamCorrection('The man holds a', 'The man holds a fishing pole.'); // ' fishing pole.'
 */
export function streamCorrection(streamed: string, answer: string): string {
  if (answer === streamed) return '';
  if (answer.startsWith(streamed)) return answer.slice(streamed.length);
  return streamed ? `\n\n${answer}` : answer;
}
