import type { ChatHistoryItem, ChatWrapper, Tokenizer } from 'node-llama-cpp';
import { LocalLlmError } from '../../errors/index.js';

/** What fitting did, for the reply's metadata: earlier history items dropped to make the prompt fit. */
export interface OverflowRecord {
  droppedItems: number;
}

/** Tokens of a history as the chat template renders it. */
export function countHistoryTokens(history: readonly ChatHistoryItem[], chatWrapper: ChatWrapper, tokenizer: Tokenizer): number {
  return chatWrapper.generateContextState({ chatHistory: [...history] }).contextText.tokenize(tokenizer).length;
}

/**
 * Makes a conversation fit `maxTokens`: drops the oldest turns after the system message (earlier questions matter
 * least to the one asked now); when even the system message and the current question do not fit, fails with
 * `context_overflow` rather than cut the instructions or the question, which would answer something else.
 *
 * @throws {LocalLlmError} `context_overflow`.
 *
 * @example
 * ```ts
 * const record = { droppedItems: 0 };
 * const fitted = fitHistory(history, 3072, (items) => countHistoryTokens(items, chat.chatWrapper, model.tokenizer), record);
 * ```
 */
export function fitHistory(history: readonly ChatHistoryItem[], maxTokens: number, count: (history: readonly ChatHistoryItem[]) => number, record: OverflowRecord): ChatHistoryItem[] {
  const fitted = [...history];
  const first = fitted[0]?.type === 'system' ? 1 : 0;
  // The last user message and the reply being written stay whatever happens.
  let lastUser = fitted.length - 1;
  while (lastUser >= 0 && fitted[lastUser]!.type !== 'user') lastUser -= 1;
  let removable = Math.max(0, lastUser - first);
  while (count(fitted) > maxTokens) {
    if (removable === 0) {
      throw new LocalLlmError('context_overflow', `The prompt does not fit the local model's context (${maxTokens} tokens for the prompt), even without earlier turns.`, {
        hint: 'Ask a shorter question, or give the local model a larger contextSize.',
      });
    }
    fitted.splice(first, 1);
    removable -= 1;
    record.droppedItems += 1;
    // A conversation restarts on a user turn, never on an answer without its question.
    while (removable > 0 && fitted[first]?.type === 'model') {
      fitted.splice(first, 1);
      removable -= 1;
      record.droppedItems += 1;
    }
  }
  return fitted;
}

/**
 * node-llama-cpp's context-shift strategy for a reply that fills the context while it is written: the same
 * dropping of oldest turns as {@link fitHistory}.
 */
export function dropOldestTurns(record: OverflowRecord) {
  return ({ chatHistory, maxTokensCount, tokenizer, chatWrapper }: { chatHistory: readonly ChatHistoryItem[]; maxTokensCount: number; tokenizer: Tokenizer; chatWrapper: ChatWrapper }) => ({
    chatHistory: fitHistory(chatHistory, maxTokensCount, (history) => countHistoryTokens(history, chatWrapper, tokenizer), record),
    metadata: null,
  });
}
