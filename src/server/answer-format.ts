// What a client may ask the answer's text to be: the sentence, or JSON made from the result's fields.
// Chat completions say it in `response_format`, the Responses API in `text.format`; both read the same way. Which
// schemas can be filled is src/conversation/result-json.ts's to say; this file reads OpenAI's fields around them.
import type { VqaResult } from '../../chains/types.js';
import { formatResultJson, readResultSchema, type ResultField } from '../conversation/index.js';
import { ApiError, toApiError } from './api-error.js';
import { isAbsent, isObject } from './request-fields.js';

/**
 * - `text`: the sentence (`result.answer`), as without any format.
 * - `json_object`: `{"answer": ..., "shortAnswer": ...}`.
 * - `json_schema`: an object with exactly the schema's properties, filled from the result.
 */
export type AnswerFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; fields: ResultField[] };

const TEXT: AnswerFormat = { type: 'text' };

/** A schema the result cannot fill is a 400 `unsupported_schema` naming the part of it that cannot be met. */
function readSchema(schema: unknown, param: string): AnswerFormat {
  try {
    return { type: 'json_schema', ...readResultSchema(schema, { param, filledBy: 'the server' }) };
  } catch (error) {
    throw toApiError(error);
  }
}

function readFormat(format: Record<string, unknown>, param: string, schemaParam: string, schema: unknown): AnswerFormat {
  switch (format.type) {
    case 'text':
      return TEXT;
    case 'json_object':
      return { type: 'json_object' };
    case 'json_schema':
      return readSchema(schema, schemaParam);
    default:
      throw new ApiError(400, 'unsupported_parameter', `The answer format ${JSON.stringify(String(format.type).slice(0, 50))} is not supported; use text, json_object or json_schema.`, {
        param: `${param}.type`,
      });
  }
}

/** Chat completions' `response_format`: `{ type }`, with the schema in `json_schema.schema`. */
export function readResponseFormat(value: unknown): AnswerFormat {
  if (isAbsent(value)) return TEXT;
  if (!isObject(value)) throw new ApiError(400, 'invalid_value', '`response_format` must be an object with a type.', { param: 'response_format' });
  if (value.type === 'json_schema' && !isObject(value.json_schema)) {
    throw new ApiError(400, 'invalid_value', 'A json_schema response format needs `json_schema: { name, schema }`.', { param: 'response_format.json_schema' });
  }
  return readFormat(value, 'response_format', 'response_format.json_schema.schema', isObject(value.json_schema) ? value.json_schema.schema : undefined);
}

/** The Responses API's `text.format`: `{ type }`, with the schema in `schema`. `text.verbosity` is ignored. */
export function readTextFormat(text: unknown): AnswerFormat {
  if (isAbsent(text)) return TEXT;
  if (!isObject(text)) throw new ApiError(400, 'invalid_value', '`text` must be an object.', { param: 'text' });
  if (isAbsent(text.format)) return TEXT;
  if (!isObject(text.format)) throw new ApiError(400, 'invalid_value', '`text.format` must be an object with a type.', { param: 'text.format' });
  return readFormat(text.format, 'text.format', 'text.format.schema', text.format.schema);
}

/** The assistant message's text for a result, in the format asked for. */
export function formatAnswer(result: VqaResult, format: AnswerFormat): string {
  if (format.type === 'text') return result.answer;
  return formatResultJson(result, format.type === 'json_schema' ? format : {});
}
