import { readTextFormat, type AnswerFormat } from './answer-format.js';
import { ApiError } from './api-error.js';
import { imageReference, reduceRequestConversation, type Conversation, type ConversationRole, type ImageReference, type RequestMessage } from './conversation.js';
import { isAbsent, isObject, readModel, readStream, readTopK, refuseTools, turnLimits, unsupportedParameter, type RequestLimits } from './request-fields.js';

/** What the pipeline needs from an OpenAI Responses API request (`POST /v1/responses`). */
export interface ResponsesRequest extends Conversation {
  model: string;
  stream: boolean;
  /** From `text.format`: the sentence, or JSON from the result's fields. */
  format: AnswerFormat;
  /** `text.format` as the client sent it, echoed in the response object (LangChain reads it to parse JSON). */
  textFormat: Record<string, unknown>;
  /** Echoed in the response object, as OpenAI does; the pipeline's own prompt is what the LLM follows. */
  instructions: string | null;
  metadata: Record<string, string> | null;
  /** Extension: how many VQA candidates to compute. */
  topK?: number;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant']);
const STORES_NOTHING = 'this server stores no responses; send the whole conversation in `input`, with earlier answers as assistant messages.';

function readPart(part: unknown, param: string, texts: string[], images: ImageReference[]): void {
  if (!isObject(part)) throw new ApiError(400, 'invalid_value', 'Each content part must be an object with a type.', { param });
  switch (part.type) {
    case 'input_text':
    case 'output_text':
      if (typeof part.text !== 'string') throw new ApiError(400, 'invalid_value', `An ${part.type} part needs a string \`text\`.`, { param: `${param}.text` });
      texts.push(part.text);
      return;
    case 'refusal':
      return;
    case 'input_image':
      if (!isAbsent(part.file_id)) {
        throw new ApiError(400, 'unsupported_content_part', 'Images by file_id are not supported: this server stores no files; send `image_url` as a data URL.', { param: `${param}.file_id` });
      }
      if (typeof part.image_url !== 'string' || part.image_url.length === 0) {
        throw new ApiError(400, 'invalid_value', 'An input_image part needs `image_url` (a data URL).', { param: `${param}.image_url` });
      }
      images.push(imageReference(part.image_url, `${param}.image_url`));
      return;
    default:
      throw new ApiError(400, 'unsupported_content_part', `Content parts of type ${JSON.stringify(String(part.type).slice(0, 50))} are not supported; send input_text and input_image parts.`, {
        param: `${param}.type`,
      });
  }
}

function readItem(item: unknown, param: string): RequestMessage {
  if (!isObject(item)) throw new ApiError(400, 'invalid_value', 'Each input item must be a message object with a role.', { param });
  if (item.type === 'item_reference') throw new ApiError(400, 'unsupported_input_item', `Item references are not supported: ${STORES_NOTHING}`, { param });
  if (!isAbsent(item.type) && item.type !== 'message') {
    throw new ApiError(400, 'unsupported_input_item', `Input items of type ${JSON.stringify(String(item.type).slice(0, 50))} are not supported; send messages.`, { param: `${param}.type` });
  }
  if (typeof item.role !== 'string' || !ROLES.has(item.role)) {
    throw new ApiError(400, 'unsupported_role', `Messages with role ${JSON.stringify(String(item.role).slice(0, 50))} are not supported; use system, developer, user and assistant.`, {
      param: `${param}.role`,
    });
  }
  const contentParam = `${param}.content`;
  const texts: string[] = [];
  const images: ImageReference[] = [];
  if (typeof item.content === 'string') texts.push(item.content);
  else if (Array.isArray(item.content)) item.content.forEach((part: unknown, index) => readPart(part, `${contentParam}[${index}]`, texts, images));
  else if (!isAbsent(item.content)) throw new ApiError(400, 'invalid_value', 'Message content must be a string or an array of parts.', { param: contentParam });
  return { role: item.role as ConversationRole, text: texts.join('\n'), images, param: contentParam };
}

// Parameters that would change the answer, or that assume state the server does not keep: refused by name.
function refuseUnsupported(body: Record<string, unknown>): void {
  refuseTools(body, { tools: 'tools', toolChoice: 'tool_choice' });
  if (!isAbsent(body.top_logprobs) && body.top_logprobs !== 0) throw unsupportedParameter('top_logprobs', 'the pipeline has no token log probabilities to return.');
  if (Array.isArray(body.include) && body.include.includes('message.output_text.logprobs')) {
    throw unsupportedParameter('include', 'the pipeline has no token log probabilities to return (message.output_text.logprobs).');
  }
  for (const name of ['previous_response_id', 'conversation']) {
    if (!isAbsent(body[name])) throw unsupportedParameter(name, STORES_NOTHING);
  }
  if (!isAbsent(body.prompt)) throw unsupportedParameter('prompt', 'this server has no stored prompts; send the question in `input`.');
  if (!isAbsent(body.background) && body.background !== false) throw unsupportedParameter('background', 'answers are given in the request that asks; poll-later responses are not kept.');
}

function readMetadata(value: unknown): Record<string, string> | null {
  if (isAbsent(value)) return null;
  if (!isObject(value) || Object.keys(value).length > 16 || Object.values(value).some((entry) => typeof entry !== 'string' || entry.length > 512)) {
    throw new ApiError(400, 'invalid_value', '`metadata` must be an object of at most 16 string values.', { param: 'metadata' });
  }
  return value as Record<string, string>;
}

/**
 * Validates a Responses API body (the subset the openai SDK, the AI SDK and LangChain send) and reduces it to one
 * image, one question and the earlier turns, as {@link parseChatRequest} does for chat completions.
 *
 * `input` is a string or a list of messages (`{ role, content }`, `type: 'message'` optional) whose parts are
 * `input_text`, `input_image` (`image_url`: a data URL, or an http(s) URL when the server fetches URLs) and, in
 * assistant messages, `output_text`. `instructions`, like system messages, is accepted and not followed. Sampling
 * settings, `store`, `reasoning`, `truncation` and `include` (but logprobs) are ignored.
 *
 * @throws {ApiError} 404 `model_not_found`; 400 `missing_image`, `too_many_images`, `missing_question`,
 *   `unsupported_role`, `unsupported_content_part`, `unsupported_input_item`, `unsupported_parameter`,
 *   `unsupported_schema`, `invalid_value`.
 */
export function parseResponsesRequest(input: unknown, limits: RequestLimits): ResponsesRequest {
  const { body, model } = readModel(input, limits);
  const stream = readStream(body);
  refuseUnsupported(body);
  const topK = readTopK(body, limits);
  const format = readTextFormat(body.text);
  if (!isAbsent(body.instructions) && typeof body.instructions !== 'string') {
    throw new ApiError(400, 'invalid_value', '`instructions` must be a string.', { param: 'instructions' });
  }
  const metadata = readMetadata(body.metadata);
  let messages: RequestMessage[];
  if (typeof body.input === 'string') {
    messages = [{ role: 'user', text: body.input, images: [], param: 'input' }];
  } else if (Array.isArray(body.input) && body.input.length > 0) {
    if (body.input.length > limits.maxMessages) throw new ApiError(400, 'too_many_messages', `At most ${limits.maxMessages} input items are accepted.`, { param: 'input' });
    messages = body.input.map((item: unknown, index) => readItem(item, `input[${index}]`));
  } else {
    throw new ApiError(400, 'invalid_value', '`input` must be a string or a non-empty array of messages.', { param: 'input' });
  }
  const conversation = reduceRequestConversation(messages, { field: 'input', imageHint: 'an input_image part (image_url: a data URL)' }, turnLimits(limits));
  return {
    model,
    stream,
    format,
    textFormat: isObject(body.text) && isObject(body.text.format) ? body.text.format : { type: 'text' },
    instructions: typeof body.instructions === 'string' ? body.instructions : null,
    metadata,
    ...conversation,
    ...(topK !== undefined ? { topK } : {}),
  };
}
