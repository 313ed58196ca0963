// One image, one question, earlier turns: what the pipeline needs from a conversation, whichever API carried it.
import type { VqaTurn } from '../../prompts/vqa-v1.js';
import { ApiError } from './api-error.js';

export type ConversationRole = 'system' | 'developer' | 'user' | 'assistant';

export interface ImageReference {
  /** The image as the client sent it: a data URL or an http(s) URL. */
  url: string;
  /** Where it sat, e.g. `messages[0].content[1].image_url.url`, for error messages. */
  param: string;
}

/** One message with its parts read: text joined, images listed. */
export interface ConversationMessage {
  role: ConversationRole;
  text: string;
  images: ImageReference[];
  /** Where its content sat, e.g. `input[2].content`. */
  param: string;
}

/** What the pipeline answers. */
export interface Conversation {
  /** The one image of the conversation, as the client sent it (data URL or http(s) URL). */
  imageUrl: string;
  imageParam: string;
  /** The last user message's text. */
  question: string;
  /** Earlier user/assistant pairs, oldest first: the chatbot's context for follow-up questions. */
  history: VqaTurn[];
}

export interface ConversationShape {
  /** The request field that holds the messages: `messages` or `input`. */
  field: string;
  /** How to add an image, for the error message: e.g. "an image_url part (a data URL)". */
  imageHint: string;
}

/**
 * Reduces a conversation to one image, the last user message's question and the earlier turns. System and developer
 * messages are accepted and ignored: the pipeline's own prompt decides how the LLM answers, and a client's system
 * prompt written for a vision model would not fit it.
 *
 * @throws {ApiError} 400 `missing_image`, `too_many_images`, `missing_question`, `invalid_value` (an image outside a
 *   user message).
 */
export function reduceConversation(messages: readonly ConversationMessage[], shape: ConversationShape): Conversation {
  const images: ImageReference[] = [];
  const history: VqaTurn[] = [];
  let pendingQuestion: string | undefined;
  let last: ConversationMessage | undefined;
  for (const message of messages) {
    if (message.images.length > 0 && message.role !== 'user') {
      throw new ApiError(400, 'invalid_value', 'Only user messages may contain images.', { param: message.images[0]!.param });
    }
    images.push(...message.images);
    const text = message.text.trim();
    if (message.role === 'user') {
      if (text) pendingQuestion = text;
    } else if (message.role === 'assistant') {
      // The client echoes our sentence back without the short answer; the sentence serves as both.
      if (pendingQuestion !== undefined && text) history.push({ question: pendingQuestion, shortAnswer: text, answer: text });
      pendingQuestion = undefined;
    }
    if (message.role !== 'system' && message.role !== 'developer') last = { ...message, text };
  }

  const distinct = [...new Map(images.map((image) => [image.url, image])).values()];
  if (distinct.length === 0) {
    throw new ApiError(400, 'missing_image', `The conversation has no image; add ${shape.imageHint} to a user message.`, { param: shape.field });
  }
  if (distinct.length > 1) {
    throw new ApiError(400, 'too_many_images', `The conversation has ${distinct.length} different images; ask about one image per conversation.`, {
      param: distinct[1]!.param,
    });
  }
  if (last?.role !== 'user') {
    throw new ApiError(400, 'missing_question', 'The last message must be a user message with a question.', { param: shape.field });
  }
  if (!last.text) throw new ApiError(400, 'missing_question', 'The last user message has no question text.', { param: last.param });
  return { imageUrl: distinct[0]!.url, imageParam: distinct[0]!.param, question: last.text, history };
}
