// One image, one question, earlier turns: what the chain needs from a conversation, whoever carried it (the server's
// chat completions and Responses API, the AI SDK provider, ChatVqaLlm). Each reads its own message format into
// ConversationMessage; the rules that follow are the same for all.
import type { VqaTurn } from '../../prompts/vqa-v1.js';
import { InvalidConversationError } from '../errors/index.js';

export type ConversationRole = 'system' | 'developer' | 'user' | 'assistant';

/** An image as a message held it; the reader adds what it needs to fetch it later (a URL, bytes). */
export interface ConversationImage {
  /** Equal for the same image sent twice: the URL as sent, or the bytes' sha256. */
  key: string;
  /** Where it sat: `messages[0].content[1].image_url.url`, or `message 1 (user), part 2`. */
  param: string;
}

/** One message with its parts read: text joined, images listed. */
export interface ConversationMessage<Image extends ConversationImage = ConversationImage> {
  role: ConversationRole;
  text: string;
  images: Image[];
  /** Where its content sat: `input[2].content`, or `message 3 (user)`. */
  param: string;
}

/** What the chain answers. */
export interface ReducedConversation<Image extends ConversationImage = ConversationImage> {
  /** The one image of the conversation. */
  image: Image;
  /** The last user message's text. */
  question: string;
  /** Earlier user/assistant pairs, oldest first: the chatbot's context for follow-up questions. */
  history: VqaTurn[];
}

/** How the caller's input names things, for error messages. */
export interface ConversationShape {
  /** What holds the messages, the `param` of an error about them all: `messages`, `input`, `prompt`. */
  field: string;
  /** How to add an image: e.g. "an image_url part (a data URL)". */
  imageHint: string;
}

/**
 * Reduces a conversation to one image, the last user message's question and the earlier turns. System and developer
 * messages are accepted and ignored: the chain's own prompt decides how the LLM answers, and a system prompt written
 * for a vision model would not fit it.
 *
 * @throws {InvalidConversationError} `missing_image`, `too_many_images`, `missing_question`, `misplaced_image`, each
 *   with the `param` at fault.
 *
 * @example
 * ```ts
 * const { image, question, history } = reduceConversation(messages, { field: 'messages', imageHint: 'an image_url part' });
 * ```
 */
export function reduceConversation<Image extends ConversationImage>(messages: readonly ConversationMessage<Image>[], shape: ConversationShape): ReducedConversation<Image> {
  const images: Image[] = [];
  const history: VqaTurn[] = [];
  let pendingQuestion: string | undefined;
  let last: ConversationMessage<Image> | undefined;
  for (const message of messages) {
    if (message.images.length > 0 && message.role !== 'user') {
      throw new InvalidConversationError('misplaced_image', 'Only user messages may contain images.', { param: message.images[0]!.param });
    }
    // One by one: a spread of 100k parts into push() overflows the call stack (RangeError, a 500).
    for (const image of message.images) images.push(image);
    const text = message.text.trim();
    if (message.role === 'user') {
      if (text) pendingQuestion = text;
    } else if (message.role === 'assistant') {
      // Clients echo the chain's sentence back without the short answer; the sentence serves as both.
      if (pendingQuestion !== undefined && text) history.push({ question: pendingQuestion, shortAnswer: text, answer: text });
      pendingQuestion = undefined;
    }
    if (message.role !== 'system' && message.role !== 'developer') last = { ...message, text };
  }

  const distinct = [...new Map(images.map((image) => [image.key, image])).values()];
  if (distinct.length === 0) {
    throw new InvalidConversationError('missing_image', `The conversation has no image; add ${shape.imageHint} to a user message.`, { param: shape.field });
  }
  if (distinct.length > 1) {
    throw new InvalidConversationError('too_many_images', `The conversation has ${distinct.length} different images; ask about one image per conversation.`, {
      param: distinct[1]!.param,
    });
  }
  if (last?.role !== 'user') {
    throw new InvalidConversationError('missing_question', 'The last message must be a user message with a question.', { param: shape.field });
  }
  if (!last.text) throw new InvalidConversationError('missing_question', 'The last user message has no question text.', { param: last.param });
  return { image: distinct[0]!, question: last.text, history };
}
