import { DEFAULT_MAX_QUESTION_LENGTH } from '../src/question.js';

/** Every default of the VQA chain, in one place. */
export const VQA_CHAIN_DEFAULTS = {
  topK: 5,
  llmTimeoutMs: 30_000,
  llmRetries: 2,
  maxQuestionLength: DEFAULT_MAX_QUESTION_LENGTH,
  maxHistoryTurns: 6,
  // Two cores run two questions' inference at a time without starving each other's worker threads.
  maxConcurrency: 2,
  // Past these, a "short answer" or "one sentence" is something else: a ramble, a leaked prompt, a list.
  maxShortAnswerLength: 100,
  maxAnswerLength: 500,
} as const;
