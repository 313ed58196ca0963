// Checks of the request fields that the chat-completions and Responses bodies have in common.
import { isAbsent, isObject } from '../conversation/result-json.js';
import { ApiError } from './api-error.js';
import { SERVER_DEFAULTS } from './server-defaults.js';

export interface RequestLimits {
  modelName: string;
  maxMessages: number;
  maxTopK: number;
  /** Longest user text of any turn. Default 1000. */
  maxQuestionLength?: number;
  /** Longest assistant text of any turn. Default 4000. */
  maxAnswerTurnLength?: number;
}

/** The limits on every turn's text, defaults filled in. */
export function turnLimits(limits: RequestLimits): { maxQuestionLength: number; maxAnswerTurnLength: number } {
  return { maxQuestionLength: limits.maxQuestionLength ?? SERVER_DEFAULTS.maxQuestionLength, maxAnswerTurnLength: limits.maxAnswerTurnLength ?? SERVER_DEFAULTS.maxAnswerTurnLength };
}

export { isAbsent, isObject };

/** The body itself and its `model`: 400 without one, 404 `model_not_found` for any other than the server's. */
export function readModel(body: unknown, limits: RequestLimits): { body: Record<string, unknown>; model: string } {
  if (!isObject(body)) throw new ApiError(400, 'invalid_body', 'The request body must be a JSON object.');
  if (typeof body.model !== 'string' || body.model.length === 0) {
    throw new ApiError(400, 'missing_model', `The request needs a model; this server serves ${JSON.stringify(limits.modelName)}.`, { param: 'model' });
  }
  if (body.model !== limits.modelName) {
    throw new ApiError(404, 'model_not_found', `The model ${JSON.stringify(body.model.slice(0, 200))} does not exist; this server serves ${JSON.stringify(limits.modelName)}.`, {
      param: 'model',
    });
  }
  return { body, model: body.model };
}

export function readStream(body: Record<string, unknown>): boolean {
  if (!isAbsent(body.stream) && typeof body.stream !== 'boolean') throw new ApiError(400, 'invalid_value', '`stream` must be a boolean.', { param: 'stream' });
  return body.stream === true;
}

/** Extension: how many VQA candidates to compute (OpenAI has no such field). */
export function readTopK(body: Record<string, unknown>, limits: RequestLimits): number | undefined {
  if (isAbsent(body.top_k)) return undefined;
  if (typeof body.top_k !== 'number' || !Number.isInteger(body.top_k) || body.top_k < 1 || body.top_k > limits.maxTopK) {
    throw new ApiError(400, 'invalid_value', `top_k must be an integer from 1 to ${limits.maxTopK}.`, { param: 'top_k' });
  }
  return body.top_k;
}

/**
 * The 400 for a parameter that would change the answer and that the server cannot honour: refused by name rather
 * than ignored, so that a client does not take an answer made without it for one made with it.
 */
export function unsupportedParameter(param: string, why: string): ApiError {
  return new ApiError(400, 'unsupported_parameter', `\`${param}\` is not supported: ${why}`, { param });
}

const NO_TOOLS = 'the server answers questions about an image with its own pipeline and never calls tools. Leave it out (or send tool_choice "none").';

/** `tools` (and the older `functions`) must be absent or empty; a tool choice absent or `'none'`. */
export function refuseTools(body: Record<string, unknown>, names: { tools: string; toolChoice: string }): void {
  const tools = body[names.tools];
  if (!isAbsent(tools) && !(Array.isArray(tools) && tools.length === 0)) throw unsupportedParameter(names.tools, NO_TOOLS);
  const choice = body[names.toolChoice];
  if (!isAbsent(choice) && choice !== 'none') throw unsupportedParameter(names.toolChoice, NO_TOOLS);
}
