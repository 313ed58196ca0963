import type { VqaTurn } from '../../prompts/vqa-v1.js';
import { ApiError } from './api-error.js';

/** What the pipeline needs from an OpenAI chat-completions request. */
export interface ChatRequest {
  model: string;
  stream: boolean;
  /** The one image of the conversation, as the client sent it (data URL or http(s) URL). */
  imageUrl: string;
  /** Where the image sat, e.g. `messages[0].content[1].image_url.url`, for error messages. */
  imageParam: string;
  /** The last user message's text. */
  question: string;
  /** Earlier user/assistant pairs, oldest first: the chatbot's context for follow-up questions. */
  history: VqaTurn[];
  /** Extension: how many VQA candidates to compute (OpenAI has no such field). */
  topK?: number;
}

export interface ChatRequestLimits {
  modelName: string;
  maxMessages: number;
  maxTopK: number;
}

const SUPPORTED_ROLES = new Set(['system', 'developer', 'user', 'assistant']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface MessageContent {
  text: string;
  images: { url: string; param: string }[];
}

function readContent(content: unknown, param: string): MessageContent {
  if (content === null || content === undefined) return { text: '', images: [] };
  if (typeof content === 'string') return { text: content, images: [] };
  if (!Array.isArray(content)) throw new ApiError(400, 'invalid_value', 'Message content must be a string or an array of parts.', { param });
  const texts: string[] = [];
  const images: MessageContent['images'] = [];
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
      images.push({ url, param: `${partParam}.image_url.url` });
    } else {
      throw new ApiError(400, 'unsupported_content_part', `Content parts of type ${JSON.stringify(String(part.type))} are not supported; send text and image_url parts.`, {
        param: `${partParam}.type`,
      });
    }
  });
  return { text: texts.join('\n'), images };
}

/**
 * Validates an OpenAI chat-completions body and reduces it to one image, one question and the earlier turns.
 *
 * System and developer messages are accepted and ignored: the pipeline's own prompt decides how the LLM answers,
 * and a client's system prompt written for a vision model would not fit it.
 *
 * @throws {ApiError} with OpenAI's error shape: 404 `model_not_found`, 400 `missing_image`, `too_many_images`,
 *   `missing_question`, `unsupported_role`, `unsupported_content_part`, `invalid_value`.
 *
 * @example
 * ```ts
 * const request = parseChatRequest(body, { modelName: 'vqa-llm', maxMessages: 64, maxTopK: 20 });
 * request.question; // "What is in the man's hand?"
 * ```
 */
export function parseChatRequest(body: unknown, limits: ChatRequestLimits): ChatRequest {
  if (!isObject(body)) throw new ApiError(400, 'invalid_body', 'The request body must be a JSON object.');
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw new ApiError(400, 'missing_model', `The request needs a model; this server serves ${JSON.stringify(limits.modelName)}.`, { param: 'model' });
  }
  if (body.model !== limits.modelName) {
    throw new ApiError(404, 'model_not_found', `The model ${JSON.stringify(body.model.slice(0, 200))} does not exist; this server serves ${JSON.stringify(limits.modelName)}.`, {
      param: 'model',
    });
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') {
    throw new ApiError(400, 'invalid_value', '`stream` must be a boolean.', { param: 'stream' });
  }
  if (body.n !== undefined && body.n !== null && body.n !== 1) {
    throw new ApiError(400, 'invalid_value', 'Only n = 1 is supported.', { param: 'n' });
  }
  let topK: number | undefined;
  if (body.top_k !== undefined && body.top_k !== null) {
    if (typeof body.top_k !== 'number' || !Number.isInteger(body.top_k) || body.top_k < 1 || body.top_k > limits.maxTopK) {
      throw new ApiError(400, 'invalid_value', `top_k must be an integer from 1 to ${limits.maxTopK}.`, { param: 'top_k' });
    }
    topK = body.top_k;
  }
  const { messages } = body;
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ApiError(400, 'invalid_value', '`messages` must be a non-empty array.', { param: 'messages' });
  }
  if (messages.length > limits.maxMessages) {
    throw new ApiError(400, 'too_many_messages', `At most ${limits.maxMessages} messages are accepted.`, { param: 'messages' });
  }

  const images: MessageContent['images'] = [];
  const history: VqaTurn[] = [];
  let pendingQuestion: string | undefined;
  let last: { role: string; text: string; param: string } | undefined;
  messages.forEach((message: unknown, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) throw new ApiError(400, 'invalid_value', 'Each message must be an object with a role.', { param });
    const role = message.role;
    if (typeof role !== 'string' || !SUPPORTED_ROLES.has(role)) {
      throw new ApiError(400, 'unsupported_role', `Messages with role ${JSON.stringify(String(role).slice(0, 50))} are not supported; use system, user and assistant.`, {
        param: `${param}.role`,
      });
    }
    const content = readContent(message.content, `${param}.content`);
    if (content.images.length > 0 && role !== 'user') {
      throw new ApiError(400, 'invalid_value', 'Only user messages may contain images.', { param: content.images[0]!.param });
    }
    images.push(...content.images);
    const text = content.text.trim();
    if (role === 'user') {
      if (text) pendingQuestion = text;
    } else if (role === 'assistant') {
      // The client echoes our sentence back without the short answer; the sentence serves as both.
      if (pendingQuestion !== undefined && text) history.push({ question: pendingQuestion, shortAnswer: text, answer: text });
      pendingQuestion = undefined;
    }
    if (role !== 'system' && role !== 'developer') last = { role, text, param: `${param}.content` };
  });

  const distinct = [...new Map(images.map((image) => [image.url, image])).values()];
  if (distinct.length === 0) {
    throw new ApiError(400, 'missing_image', 'The conversation has no image; add an image_url part (a data URL) to a user message.', { param: 'messages' });
  }
  if (distinct.length > 1) {
    throw new ApiError(400, 'too_many_images', `The conversation has ${distinct.length} different images; ask about one image per conversation.`, {
      param: distinct[1]!.param,
    });
  }
  if (last?.role !== 'user') {
    throw new ApiError(400, 'missing_question', 'The last message must be a user message with a question.', { param: 'messages' });
  }
  if (!last.text) throw new ApiError(400, 'missing_question', 'The last user message has no question text.', { param: last.param });

  return {
    model: body.model,
    stream: body.stream === true,
    imageUrl: distinct[0]!.url,
    imageParam: distinct[0]!.param,
    question: last.text,
    history,
    ...(topK !== undefined ? { topK } : {}),
  };
}
