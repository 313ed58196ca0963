// What a client may ask the answer's text to be: the sentence, or JSON made from the result's fields.
// Chat completions say it in `response_format`, the Responses API in `text.format`; both read the same way.
import type { VqaResult } from '../../chains/types.js';
import { ApiError } from './api-error.js';
import { isAbsent, isObject } from './request-fields.js';

/** The result fields a JSON schema may ask for, each with the one JSON type the server fills it with. */
const FILLABLE_FIELDS = {
  answer: 'string',
  shortAnswer: 'string',
  question: 'string',
  caption: 'string',
  source: 'string',
  candidates: 'array',
} as const;

type FillableField = keyof typeof FILLABLE_FIELDS;
type CandidateKey = 'answer' | 'score';
const CANDIDATE_KEYS: Record<CandidateKey, string> = { answer: 'string', score: 'number' };
const SOURCES = ['llm', 'vqa'];

interface SelectedField {
  name: FillableField;
  /** For `candidates`: the keys each item keeps, in the schema's order; all of them when the schema names none. */
  candidateKeys?: CandidateKey[];
}

/**
 * - `text`: the sentence (`result.answer`), as without any format.
 * - `json_object`: `{"answer": ..., "shortAnswer": ...}`.
 * - `json_schema`: an object with exactly the schema's properties, filled from the result.
 */
export type AnswerFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; fields: SelectedField[] };

const TEXT: AnswerFormat = { type: 'text' };

// Keywords that only describe, or that any value the server writes satisfies; every other keyword (enum, pattern,
// minLength, minimum, $ref, anyOf...) constrains values in ways the server does not check, so it is refused.
const DESCRIPTIVE = new Set(['type', 'description', 'title']);
const OBJECT_KEYWORDS = new Set([...DESCRIPTIVE, 'properties', 'required', 'additionalProperties', '$schema']);

function refuse(param: string, why: string): ApiError {
  return new ApiError(400, 'unsupported_schema', `This JSON schema cannot be honoured: ${why} See the server's docs for the schemas it fills.`, { param });
}

function hasType(schema: Record<string, unknown>, type: string): boolean {
  const declared = schema.type;
  return declared === type || (Array.isArray(declared) && declared.includes(type));
}

function checkKeywords(schema: Record<string, unknown>, allowed: ReadonlySet<string>, param: string): void {
  for (const keyword of Object.keys(schema)) {
    if (!allowed.has(keyword)) throw refuse(`${param}.${keyword}`, `the keyword ${JSON.stringify(keyword.slice(0, 50))} constrains values the server does not check.`);
  }
}

function checkRequired(schema: Record<string, unknown>, properties: Record<string, unknown>, param: string): void {
  if (isAbsent(schema.required)) return;
  if (!Array.isArray(schema.required) || schema.required.some((name) => typeof name !== 'string' || !(name in properties))) {
    throw refuse(`${param}.required`, '`required` must list names among the properties.');
  }
}

function readCandidateItems(items: unknown, param: string): CandidateKey[] {
  if (isAbsent(items)) return ['answer', 'score'];
  if (!isObject(items) || !hasType(items, 'object') || !isObject(items.properties)) {
    throw refuse(param, 'the candidates are objects { answer: string, score: number }; `items` must be an object schema with properties among those.');
  }
  checkKeywords(items, OBJECT_KEYWORDS, param);
  checkRequired(items, items.properties, param);
  return Object.entries(items.properties).map(([key, property]) => {
    const propertyParam = `${param}.properties.${key.slice(0, 50)}`;
    if (!(key in CANDIDATE_KEYS)) throw refuse(propertyParam, `a candidate has only \`answer\` (string) and \`score\` (number), not ${JSON.stringify(key.slice(0, 50))}.`);
    const type = CANDIDATE_KEYS[key as CandidateKey];
    if (!isObject(property) || !hasType(property, type)) throw refuse(propertyParam, `a candidate's ${key} is a ${type}.`);
    checkKeywords(property, DESCRIPTIVE, propertyParam);
    return key as CandidateKey;
  });
}

function readField(name: string, property: unknown, param: string): SelectedField {
  if (!(name in FILLABLE_FIELDS)) {
    throw refuse(param, `the server fills only ${Object.keys(FILLABLE_FIELDS).join(', ')}; not ${JSON.stringify(name.slice(0, 50))}.`);
  }
  const field = name as FillableField;
  const type = FILLABLE_FIELDS[field];
  if (!isObject(property) || !hasType(property, type)) throw refuse(param, `${field} is a ${type}; its schema must say \`type: "${type}"\`.`);
  if (field === 'candidates') {
    checkKeywords(property, new Set([...DESCRIPTIVE, 'items']), param);
    return { name: field, candidateKeys: readCandidateItems(property.items, `${param}.items`) };
  }
  // `source` may list its values, as long as both can occur.
  const allowed = field === 'source' && Array.isArray(property.enum) && SOURCES.every((value) => (property.enum as unknown[]).includes(value)) ? new Set([...DESCRIPTIVE, 'enum']) : DESCRIPTIVE;
  checkKeywords(property, allowed, param);
  return { name: field };
}

/**
 * A JSON schema is honoured when it describes an object whose properties are all among the result fields the server
 * fills (answer, shortAnswer, question, caption, source, candidates), each with the type the server writes and no
 * constraint beyond it; anything else is a 400 naming the part of the schema that cannot be met.
 */
function readSchema(schema: unknown, param: string): AnswerFormat {
  if (!isObject(schema) || !hasType(schema, 'object') || !isObject(schema.properties) || Object.keys(schema.properties).length === 0) {
    throw refuse(param, `the answer is an object; the schema must say \`type: "object"\` and name properties among ${Object.keys(FILLABLE_FIELDS).join(', ')}.`);
  }
  checkKeywords(schema, OBJECT_KEYWORDS, param);
  const properties = schema.properties;
  checkRequired(schema, properties, param);
  return { type: 'json_schema', fields: Object.entries(properties).map(([name, property]) => readField(name, property, `${param}.properties.${name.slice(0, 50)}`)) };
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
  if (format.type === 'json_object') return JSON.stringify({ answer: result.answer, shortAnswer: result.shortAnswer });
  const object: Record<string, unknown> = {};
  for (const field of format.fields) {
    if (field.name === 'candidates') {
      const keys = field.candidateKeys ?? ['answer', 'score'];
      object.candidates = result.candidates.map((candidate) => Object.fromEntries(keys.map((key) => [key, candidate[key]])));
    } else {
      object[field.name] = result[field.name];
    }
  }
  return JSON.stringify(object);
}
