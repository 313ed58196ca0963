// JSON answers made from the result's fields, for callers that ask for JSON with a schema (the AI SDK's
// `Output.object`). The rules are the server's (src/server/answer-format.ts): a schema is honoured when it describes
// an object whose properties are all among the fields the pipeline fills, each with the type it writes and no
// constraint beyond it. This copy reports a refusal instead of throwing an HTTP error, so that adapters do not load
// server code.
import type { VqaResult } from '../../chains/types.js';

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

// Keywords that only describe, or that any value the pipeline writes satisfies; any other keyword (enum, pattern,
// minLength, $ref, anyOf...) constrains values in ways nothing checks, so the schema is refused.
const DESCRIPTIVE = new Set(['type', 'description', 'title']);
const OBJECT_KEYWORDS = new Set([...DESCRIPTIVE, 'properties', 'required', 'additionalProperties', '$schema']);

interface SelectedField {
  name: FillableField;
  /** For `candidates`: the keys each item keeps, in the schema's order. */
  candidateKeys?: CandidateKey[];
}

/** `{ answer, shortAnswer }` without a schema; the schema's properties with one. */
export type ResultJsonFormat = { type: 'answer' } | { type: 'fields'; fields: SelectedField[] };

/** Why a schema cannot be filled: where in it (e.g. `properties.answer.minLength`) and what is wrong. */
export class SchemaRefusal extends Error {
  constructor(
    readonly path: string,
    readonly why: string,
  ) {
    super(`${path ? `${path}: ` : ''}${why}`);
  }
}

type Schema = Record<string, unknown>;

function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function join(path: string, key: string): string {
  return path ? `${path}.${key.slice(0, 50)}` : key.slice(0, 50);
}

function hasType(schema: Schema, type: string): boolean {
  return schema.type === type || (Array.isArray(schema.type) && schema.type.includes(type));
}

function checkKeywords(schema: Schema, allowed: ReadonlySet<string>, path: string): void {
  for (const keyword of Object.keys(schema)) {
    if (!allowed.has(keyword)) throw new SchemaRefusal(join(path, keyword), `the keyword ${JSON.stringify(keyword.slice(0, 50))} constrains values the pipeline does not check.`);
  }
}

function checkRequired(schema: Schema, properties: Schema, path: string): void {
  if (schema.required === undefined) return;
  if (!Array.isArray(schema.required) || schema.required.some((name) => typeof name !== 'string' || !(name in properties))) {
    throw new SchemaRefusal(join(path, 'required'), '`required` must list names among the properties.');
  }
}

function readCandidateItems(items: unknown, path: string): CandidateKey[] {
  if (items === undefined) return ['answer', 'score'];
  if (!isObject(items) || !hasType(items, 'object') || !isObject(items.properties)) {
    throw new SchemaRefusal(path, 'the candidates are objects { answer: string, score: number }; `items` must be an object schema with properties among those.');
  }
  checkKeywords(items, OBJECT_KEYWORDS, path);
  checkRequired(items, items.properties, path);
  return Object.entries(items.properties).map(([key, property]) => {
    const propertyPath = join(join(path, 'properties'), key);
    if (!(key in CANDIDATE_KEYS)) throw new SchemaRefusal(propertyPath, `a candidate has only \`answer\` (string) and \`score\` (number), not ${JSON.stringify(key.slice(0, 50))}.`);
    const type = CANDIDATE_KEYS[key as CandidateKey];
    if (!isObject(property) || !hasType(property, type)) throw new SchemaRefusal(propertyPath, `a candidate's ${key} is a ${type}.`);
    checkKeywords(property, DESCRIPTIVE, propertyPath);
    return key as CandidateKey;
  });
}

function readField(name: string, property: unknown, path: string): SelectedField {
  if (!(name in FILLABLE_FIELDS)) throw new SchemaRefusal(path, `the pipeline fills only ${Object.keys(FILLABLE_FIELDS).join(', ')}; not ${JSON.stringify(name.slice(0, 50))}.`);
  const field = name as FillableField;
  const type = FILLABLE_FIELDS[field];
  if (!isObject(property) || !hasType(property, type)) throw new SchemaRefusal(path, `${field} is a ${type}; its schema must say \`type: "${type}"\`.`);
  if (field === 'candidates') {
    checkKeywords(property, new Set([...DESCRIPTIVE, 'items']), path);
    return { name: field, candidateKeys: readCandidateItems(property.items, join(path, 'items')) };
  }
  // `source` may list its values, as long as both can occur.
  const listsSources = field === 'source' && Array.isArray(property.enum) && SOURCES.every((value) => (property.enum as unknown[]).includes(value));
  checkKeywords(property, listsSources ? new Set([...DESCRIPTIVE, 'enum']) : DESCRIPTIVE, path);
  return { name: field };
}

/**
 * The JSON format for a schema, or `{ answer, shortAnswer }` without one.
 *
 * @throws {SchemaRefusal} naming the part of the schema that cannot be met.
 */
export function readResultSchema(schema: unknown): ResultJsonFormat {
  if (schema === undefined) return { type: 'answer' };
  if (!isObject(schema) || !hasType(schema, 'object') || !isObject(schema.properties) || Object.keys(schema.properties).length === 0) {
    throw new SchemaRefusal('', `the answer is an object; the schema must say \`type: "object"\` and name properties among ${Object.keys(FILLABLE_FIELDS).join(', ')}.`);
  }
  checkKeywords(schema, OBJECT_KEYWORDS, '');
  const properties = schema.properties;
  checkRequired(schema, properties, '');
  return { type: 'fields', fields: Object.entries(properties).map(([name, property]) => readField(name, property, join('properties', name))) };
}

/** The JSON text for a result in the given format. */
export function formatResultJson(result: VqaResult, format: ResultJsonFormat): string {
  if (format.type === 'answer') return JSON.stringify({ answer: result.answer, shortAnswer: result.shortAnswer });
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
