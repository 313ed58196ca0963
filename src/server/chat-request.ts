import type { AnswerFormat } from './answer-format.js';
import { readResponseFormat } from './answer-format.js';
import { ApiError } from './api-error.js';
import { imageReference, reduceRequestConversation, type Conversation, type ConversationRole, type ImageReference, type RequestMessage } from './conversation.js';
import { isAbsent, isObject, readModel, readStream, readTopK, refuseTools, turnLimits, unsupportedParameter, type RequestLimits } from './request-fields.js';

/** What the pipeline needs from an OpenAI chat-completions request. */
export interface ChatRequest extends Conversation {
  model: string;
  stream: boolean;
  /** `stream_options.include_usage`: a last chunk with `usage` and no choices. */
  includeUsage: boolean;
  /** From `response_format`: the sentence, or JSON from the result's fields. */
  format: AnswerFormat;
  /** Extension: how many VQA candidates to compute (OpenAI has no such field). */
  topK?: number;
}

export type ChatRequestLimits = RequestLimits;

const SUPPORTED_ROLES = new Set(['system', 'developer', 'user', 'assistant']);

function readContent(content: unknown, param: string): { text: string; images: ImageReference[] } {
  if (content === null || content === undefined) return { text: '', images: [] };
  if (typeof content === 'string') return { text: content, images: [] };
  if (!Array.isArray(content)) throw new ApiError(400, 'invalid_value', 'Message content must be a string or an array of parts.', { param });
  const texts: string[] = [];
  const images: ImageReference[] = [];
  content.forEach((part: unknown, index) => {
    const partParam = `${param}[${index}]`;
    if (!isObject(part)) throw new ApiError(400, 'invalid_value', 'Each content part must be an object with a type.', { param: partParam });
    if (part.type === 'text') {
      if (typeof part.text !== 'string') throw new ApiError(400, 'invalid_value', 'A text part needs a string `text`.', { param: `${partParam}.text` });
      texts.push(part.text);
    } else if (part.type === 'image_url') {
      // OpenAI's format is { url, detail }; some clients send the URL string itself.
      const url = typeof part.image_url === 'string' ? part.image_url : isObject(part.image_url) ? part.image_url.url : undefined;
      if (typeof url !== 'string' || url.length === 0) {
        throw new ApiError(400, 'invalid_value', 'An image_url part needs `image_url.url`.', { param: `${partParam}.image_url.url` });
      }
      images.push(imageReference(url, `${partParam}.image_url.url`));
    } else {
      throw new ApiError(400, 'unsupported_content_part', `Content parts of type ${JSON.stringify(String(part.type))} are not supported; send text and image_url parts.`, {
        param: `${partParam}.type`,
      });
    }
  });
  return { text: texts.join('\n'), images };
}

// Parameters that would change the answer and cannot be honoured: refused by name, never ignored.
function refuseUnsupported(body: Record<string, unknown>): void {
  if (!isAbsent(body.n) && body.n !== 1) throw new ApiError(400, 'invalid_value', 'Only n = 1 is supported.', { param: 'n' });
  refuseTools(body, { tools: 'tools', toolChoice: 'tool_choice' });
  refuseTools(body, { tools: 'functions', toolChoice: 'function_call' });
  if (!isAbsent(body.logprobs) && body.logprobs !== false) throw unsupportedParameter('logprobs', 'the pipeline has no token log probabilities to return.');
  if (!isAbsent(body.top_logprobs) && body.top_logprobs !== 0) throw unsupportedParameter('top_logprobs', 'the pipeline has no token log probabilities to return.');
  if (!isAbsent(body.modalities) && !(Array.isArray(body.modalities) && body.modalities.every((modality) => modality === 'text'))) {
    throw unsupportedParameter('modalities', 'the answer is text only.');
  }
  if (!isAbsent(body.audio)) throw unsupportedParameter('audio', 'the answer is text only.');
  if (!isAbsent(body.web_search_options)) throw unsupportedParameter('web_search_options', 'the answer comes from the image and the LLM; nothing is searched.');
}

function readIncludeUsage(body: Record<string, unknown>): boolean {
  const options = body.stream_options;
  if (isAbsent(options)) return false;
  if (!isObject(options)) throw new ApiError(400, 'invalid_value', '`stream_options` must be an object.', { param: 'stream_options' });
  if (!isAbsent(options.include_usage) && typeof options.include_usage !== 'boolean') {
    throw new ApiError(400, 'invalid_value', '`stream_options.include_usage` must be a boolean.', { param: 'stream_options.include_usage' });
  }
  return options.include_usage === true;
}

/**
 * Validates an OpenAI chat-completions body and reduces it to one image, one question and the earlier turns.
 *
 * System and developer messages are accepted and ignored: the pipeline's own prompt decides how the LLM answers,
 * and a client's system prompt written for a vision model would not fit it. Sampling settings (temperature, top_p,
 * max_tokens, seed, stop...) are ignored too: the server's LLM settings decide. What would change the answer and
 * cannot be honoured is refused by name: `tools`, `tool_choice`, `functions`, `function_call`, `n` > 1,
 * `logprobs`, `top_logprobs`, `modalities` other than text, `audio`, `web_search_options`, unknown `response_format` types and JSON
 * schemas the server cannot fill.
 *
 * @throws {ApiError} with OpenAI's error shape: 404 `model_not_found`, 400 `missing_image`, `too_many_images`,
 *   `missing_question`, `unsupported_role`, `unsupported_content_part`, `unsupported_parameter`,
 *   `unsupported_schema`, `invalid_value`.
 *
 * @example
 * ```ts
 * const request = parseChatRequest(body, { modelName: 'vqa-llm', maxMessages: 64, maxTopK: 20 });
 * request.question; // "What is in the man's hand?"
 * ```
 */
export function parseChatRequest(input: unknown, limits: ChatRequestLimits): ChatRequest {
  const { body, model } = readModel(input, limits);
  const stream = readStream(body);
  refuseUnsupported(body);
  const topK = readTopK(body, limits);
  const format = readResponseFormat(body.response_format);
  const includeUsage = readIncludeUsage(body);
  const { messages } = body;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ApiError(400, 'invalid_value', '`messages` must be a non-empty array.', { param: 'messages' });
  }
  if (messages.length > limits.maxMessages) {
    throw new ApiError(400, 'too_many_messages', `At most ${limits.maxMessages} messages are accepted.`, { param: 'messages' });
  }
  const read: RequestMessage[] = messages.map((message: unknown, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) throw new ApiError(400, 'invalid_value', 'Each message must be an object with a role.', { param });
    const role = message.role;
    if (typeof role !== 'string' || !SUPPORTED_ROLES.has(role)) {
      throw new ApiError(400, 'unsupported_role', `Messages with role ${JSON.stringify(String(role).slice(0, 50))} are not supported; use system, user and assistant.`, {
        param: `${param}.role`,
      });
    }
    return { role: role as ConversationRole, ...readContent(message.content, `${param}.content`), param: `${param}.content` };
  });
  const conversation = reduceRequestConversation(read, { field: 'messages', imageHint: 'an image_url part (a data URL)' }, turnLimits(limits));
  return { model, stream, includeUsage: stream && includeUsage, format, ...conversation, ...(topK !== undefined ? { topK } : {}) };
}
