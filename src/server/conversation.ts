// The server's side of reducing a conversation to one image, one question and the earlier turns: the rules are
// src/conversation/'s, shared with the in-process adapters; a conversation they refuse is a 400 in OpenAI's shape.
import type { VqaTurn } from '../../prompts/vqa-v1.js';
import { checkTurnText, reduceConversation, type ConversationMessage, type ConversationShape } from '../conversation/index.js';
import { toApiError } from './api-error.js';

export type { ConversationRole, ConversationShape } from '../conversation/index.js';

export interface ImageReference {
  /** The image as the client sent it: a data URL or an http(s) URL. */
  url: string;
  /** The URL: the same image sent twice is one image. */
  key: string;
  /** Where it sat, e.g. `messages[0].content[1].image_url.url`, for error messages. */
  param: string;
}

/** One message with its parts read; `param` is where its content sat, e.g. `input[2].content`. */
export type RequestMessage = ConversationMessage<ImageReference>;

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

export function imageReference(url: string, param: string): ImageReference {
  return { url, key: url, param };
}

/** Limits on every user and assistant text of a conversation, earlier turns included. */
export interface TurnLimits {
  maxQuestionLength: number;
  maxAnswerTurnLength: number;
}

// Every user and assistant text reaches the LLM's prompt (earlier ones as history), so each is checked as the last
// question is; empty texts are left to the rules below (an image-only message, an assistant message with no text).
function checkEveryTurn(messages: readonly RequestMessage[], limits: TurnLimits): void {
  for (const message of messages) {
    if (message.text.trim() === '') continue;
    if (message.role === 'user') checkTurnText(message.text, limits.maxQuestionLength, `The user message at ${message.param}`);
    else if (message.role === 'assistant') checkTurnText(message.text, limits.maxAnswerTurnLength, `The assistant message at ${message.param}`);
  }
}

/**
 * Reduces a request's messages to one image, the last user message's question and the earlier turns; system and
 * developer messages are accepted and ignored. Every user and assistant text is checked as a question is.
 *
 * @throws {ApiError} 400 `missing_image`, `too_many_images`, `missing_question`, `invalid_value` (an image outside a
 *   user message).
 */
export function reduceRequestConversation(messages: readonly RequestMessage[], shape: ConversationShape, limits: TurnLimits): Conversation {
  try {
    checkEveryTurn(messages, limits);
    const { image, question, history } = reduceConversation(messages, shape);
    return { imageUrl: image.url, imageParam: image.param, question, history };
  } catch (error) {
    throw toApiError(error);
  }
}
