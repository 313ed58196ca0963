// One image, one question, earlier turns: what the chain needs from the messages an adapter is given. The rules are
// those of the server's `reduceConversation` (src/server/conversation.ts); this copy throws library errors rather
// than HTTP ones, so that adapters do not load server code.
import type { VqaTurn } from '../../prompts/vqa-v1.js';
import { InvalidConversationError } from './invalid-conversation-error.js';

/** An image as a message carried it, before any download. */
export type ImageSource = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'url'; url: URL };

export interface PromptImage {
  source: ImageSource;
  /** Equal for the same image sent twice: the bytes' sha256, or the URL. */
  key: string;
  /** Where it sat, e.g. `messages[0].content[1]`, for error messages. */
  where: string;
}

/** One message with its parts read: text joined, images listed. */
export interface PromptMessage {
  role: 'system' | 'user' | 'assistant';
  text: string;
  images: PromptImage[];
  where: string;
}

/** What the chain answers. */
export interface ReducedPrompt {
  image: PromptImage;
  /** The last user message's text. */
  question: string;
  /** Earlier user/assistant pairs, oldest first. */
  history: VqaTurn[];
}

/**
 * Reduces messages to one image, the last user message's question and the earlier turns. System messages are
 * ignored: the chain's own prompt decides how the LLM answers, and a system prompt written for a vision model would
 * not fit it. An assistant message is the chain's earlier sentence, which serves as both answer and short answer.
 *
 * @throws {InvalidConversationError} `missing_image`, `too_many_images`, `missing_question`, `misplaced_image`.
 */
export function reducePrompt(messages: readonly PromptMessage[]): ReducedPrompt {
  const images: PromptImage[] = [];
  const history: VqaTurn[] = [];
  let pendingQuestion: string | undefined;
  let last: PromptMessage | undefined;
  for (const message of messages) {
    if (message.images.length > 0 && message.role !== 'user') {
      throw new InvalidConversationError('misplaced_image', `${message.images[0]!.where} is an image in a ${message.role} message; only user messages may hold images.`);
    }
    images.push(...message.images);
    const text = message.text.trim();
    if (message.role === 'user') {
      if (text) pendingQuestion = text;
    } else if (message.role === 'assistant') {
      if (pendingQuestion !== undefined && text) history.push({ question: pendingQuestion, shortAnswer: text, answer: text });
      pendingQuestion = undefined;
    }
    if (message.role !== 'system') last = { ...message, text };
  }

  const distinct = [...new Map(images.map((image) => [image.key, image])).values()];
  if (distinct.length === 0) {
    throw new InvalidConversationError('missing_image', 'The messages hold no image; add one to a user message, beside the question.');
  }
  if (distinct.length > 1) {
    throw new InvalidConversationError('too_many_images', `The messages hold ${distinct.length} different images (the second at ${distinct[1]!.where}); ask about one image per conversation.`);
  }
  if (last?.role !== 'user') throw new InvalidConversationError('missing_question', 'The last message must be a user message with a question.');
  if (!last.text) throw new InvalidConversationError('missing_question', `The last user message (${last.where}) has no question text.`);
  return { image: distinct[0]!, question: last.text, history };
}
