import type { Candidate } from '../src/types.js';

const NUMBER_WORDS: Record<string, string> = {
  zero: '0', none: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8',
  nine: '9', ten: '10', eleven: '11', twelve: '12', thirteen: '13', fourteen: '14', fifteen: '15', sixteen: '16',
  seventeen: '17', eighteen: '18', nineteen: '19', twenty: '20',
};

/**
 * Normalises an answer the way the VQA evaluation does, so "Two.", "two" and "2" compare equal: lower case,
 * punctuation dropped, articles dropped, number words as digits.
 *
 * @example
 * ```ts
 * normalizeAnswer('A fishing pole.'); // 'fishing pole'
 * normalizeAnswer('Two'); // '2'
 * ```
 */
export function normalizeAnswer(answer: string): string {
  return answer
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/u)
    .filter((word) => word !== '' && word !== 'a' && word !== 'an' && word !== 'the')
    .map((word) => NUMBER_WORDS[word] ?? word)
    .join(' ');
}

/**
 * The first candidate equal to `shortAnswer` after {@link normalizeAnswer}, or undefined.
 *
 * @example
 * ```ts
 * matchCandidate('Fishing pole', [{ answer: 'fish', score: 0.6 }, { answer: 'fishing pole', score: 0.2 }]);
 * // { index: 1, answer: 'fishing pole' }
 * ```
 */
export function matchCandidate(shortAnswer: string, candidates: readonly Candidate[]): { index: number; answer: string } | undefined {
  const normalized = normalizeAnswer(shortAnswer);
  if (normalized === '') return undefined;
  const index = candidates.findIndex((candidate) => normalizeAnswer(candidate.answer) === normalized);
  return index === -1 ? undefined : { index, answer: candidates[index]!.answer };
}
