// Earlier turns reach the LLM's prompt as the last question does, so they pass the same checks: a history of
// megabyte turns is a cost amplifier against a paid LLM, and a control character refused in the last question must
// not pass in an earlier one.
import type { VqaTurn } from '../../prompts/vqa-v1.js';
import { InvalidConversationError, InvalidQuestionError } from '../errors/index.js';
import { validateQuestion } from '../question.js';

export interface HistoryLimits {
  /** Longest earlier question, in characters (code points), as for the last question. */
  maxQuestionLength: number;
  /** Longest earlier answer (the sentence or the short answer), in characters. */
  maxAnswerLength: number;
  /** Most turns accepted. */
  maxTurns?: number;
}

/**
 * One text of a conversation checked as a question is (control characters, length, not empty) and normalised; the
 * error names it with `what` ("The answer of earlier turn 2").
 *
 * @example
 * ```ts
 * checkTurnText(message.text, 4000, 'The assistant message messages[3]');
 * ```
 */
export function checkTurnText(text: unknown, maxLength: number, what: string): string {
  try {
    return validateQuestion(text, { maxLength });
  } catch (error) {
    if (!InvalidQuestionError.isInstance(error)) throw error;
    // validateQuestion speaks of "the question"; say which text of which turn it was.
    const message = error.hint ? error.message.slice(0, -error.hint.length - 1) : error.message;
    throw new InvalidQuestionError(error.reason, `${what}: ${message.replace(/^The question/, 'it')}`, { cause: error });
  }
}

/**
 * Checks every earlier turn as the last question is checked (control and text-direction characters, length) and
 * returns the turns normalised; assistant texts get `maxAnswerLength`.
 *
 * @throws {InvalidQuestionError} `control_characters`, `too_long` or `empty`, naming the turn.
 * @throws {InvalidConversationError} `unsupported_content` when `history` is not an array of `{ question,
 *   shortAnswer, answer }` strings, or has more than `maxTurns` turns.
 *
 * @example
 * ```ts
 * const history = validateHistory(request.history, { maxQuestionLength: 1000, maxAnswerLength: 4000 });
 * ```
 */
export function validateHistory(history: unknown, limits: HistoryLimits): VqaTurn[] {
  if (history === undefined || history === null) return [];
  if (!Array.isArray(history)) throw new InvalidConversationError('unsupported_content', 'history must be an array of { question, shortAnswer, answer } turns.', { param: 'history' });
  if (limits.maxTurns !== undefined && history.length > limits.maxTurns) {
    throw new InvalidConversationError('unsupported_content', `history has ${history.length} turns; at most ${limits.maxTurns} are accepted.`, { param: 'history' });
  }
  return history.map((turn: unknown, index) => {
    const record = turn as Partial<Record<keyof VqaTurn, unknown>> | null;
    if (typeof record !== 'object' || record === null || typeof record.question !== 'string' || typeof record.answer !== 'string' || (record.shortAnswer !== undefined && typeof record.shortAnswer !== 'string')) {
      throw new InvalidConversationError('unsupported_content', `history[${index}] must be { question, shortAnswer, answer } with string values.`, { param: `history[${index}]` });
    }
    const answer = checkTurnText(record.answer, limits.maxAnswerLength, `The answer of earlier turn ${index + 1}`);
    return {
      question: checkTurnText(record.question, limits.maxQuestionLength, `The question of earlier turn ${index + 1}`),
      shortAnswer: typeof record.shortAnswer === 'string' ? checkTurnText(record.shortAnswer, limits.maxAnswerLength, `The short answer of earlier turn ${index + 1}`) : answer,
      answer,
    };
  });
}
