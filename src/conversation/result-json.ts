// JSON answers made from the result's fields: `{ answer, shortAnswer }`, or an object with exactly the properties a
// JSON schema names. The server reads the schema from `response_format` or `text.format`, the AI SDK provider from
// `responseFormat` (`Output.object`); which schemas can be filled, and how, is decided here for both.
import type { VqaResult } from '../../chains/types.js';
import { InvalidConversationError } from '../errors/index.js';

/** The result fields a JSON schema may ask for, each with the one JSON type it is filled with. */
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

// Keywords that only describe, or that any value the pipeline writes satisfies; every other keyword (enum, pattern,
// minLength, minimum, $ref, anyOf...) constrains values in ways nothing checks, so the schema is refused.
const DESCRIPTIVE = new Set(['type', 'description', 'title']);
const OBJECT_KEYWORDS = new Set([...DESCRIPTIVE, 'properties', 'required', 'additionalProperties', '$schema']);

export interface ResultField {
  name: FillableField;
  /** For `candidates`: the keys each item keeps, in the schema's order; all of them when the schema names none. */
  candidateKeys?: CandidateKey[];
}

/** JSON from the result: `{ answer, shortAnswer }` without `fields`; with them, an object with exactly those. */
export interface ResultJsonFormat {
  fields?: ResultField[];
}

export interface ResultSchemaOptions {
  /** Where the schema sits in the caller's input, the start of a refusal's `param`: `response_format.json_schema.schema`. */
  param: string;
  /** Who fills the JSON, as refusals name it: `the server`, `the pipeline`. */
  filledBy: string;
}

type Schema = Record<string, unknown>;

/** A plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An optional JSON field left out, or sent as null. */
export function isAbsent(value: unknown): value is null | undefined {
  return value === undefined || value === null;
}

// Names come from the caller's schema: cut, so that a refusal never echoes an unbounded string.
function join(param: string, key: string): string {
  return `${param}.${key.slice(0, 50)}`;
}

function refuse(param: string, why: string): InvalidConversationError {
  return new InvalidConversationError('unsupported_schema', `This JSON schema cannot be honoured: ${why}`, { param });
}

function hasType(schema: Schema, type: string): boolean {
  return schema.type === type || (Array.isArray(schema.type) && schema.type.includes(type));
}

class SchemaReader {
  constructor(private readonly filledBy: string) {}

  private checkKeywords(schema: Schema, allowed: ReadonlySet<string>, param: string): void {
    for (const keyword of Object.keys(schema)) {
      if (!allowed.has(keyword)) throw refuse(join(param, keyword), `the keyword ${JSON.stringify(keyword.slice(0, 50))} constrains values ${this.filledBy} does not check.`);
    }
  }

  private checkRequired(schema: Schema, properties: Schema, param: string): void {
    if (isAbsent(schema.required)) return;
    if (!Array.isArray(schema.required) || schema.required.some((name) => typeof name !== 'string' || !(name in properties))) {
      throw refuse(join(param, 'required'), '`required` must list names among the properties.');
    }
  }

  private readCandidateItems(items: unknown, param: string): CandidateKey[] {
    if (isAbsent(items)) return ['answer', 'score'];
    if (!isObject(items) || !hasType(items, 'object') || !isObject(items.properties)) {
      throw refuse(param, 'the candidates are objects { answer: string, score: number }; `items` must be an object schema with properties among those.');
    }
    this.checkKeywords(items, OBJECT_KEYWORDS, param);
    this.checkRequired(items, items.properties, param);
    return Object.entries(items.properties).map(([key, property]) => {
      const propertyParam = join(join(param, 'properties'), key);
      if (!(key in CANDIDATE_KEYS)) throw refuse(propertyParam, `a candidate has only \`answer\` (string) and \`score\` (number), not ${JSON.stringify(key.slice(0, 50))}.`);
      const type = CANDIDATE_KEYS[key as CandidateKey];
      if (!isObject(property) || !hasType(property, type)) throw refuse(propertyParam, `a candidate's ${key} is a ${type}.`);
      this.checkKeywords(property, DESCRIPTIVE, propertyParam);
      return key as CandidateKey;
    });
  }

  private readField(name: string, property: unknown, param: string): ResultField {
    if (!(name in FILLABLE_FIELDS)) {
      throw refuse(param, `${this.filledBy} fills only ${Object.keys(FILLABLE_FIELDS).join(', ')}; not ${JSON.stringify(name.slice(0, 50))}.`);
    }
    const field = name as FillableField;
    const type = FILLABLE_FIELDS[field];
    if (!isObject(property) || !hasType(property, type)) throw refuse(param, `${field} is a ${type}; its schema must say \`type: "${type}"\`.`);
    if (field === 'candidates') {
      this.checkKeywords(property, new Set([...DESCRIPTIVE, 'items']), param);
      return { name: field, candidateKeys: this.readCandidateItems(property.items, join(param, 'items')) };
    }
    // `source` may list its values, as long as both can occur.
    const listsSources = field === 'source' && Array.isArray(property.enum) && SOURCES.every((value) => (property.enum as unknown[]).includes(value));
    this.checkKeywords(property, listsSources ? new Set([...DESCRIPTIVE, 'enum']) : DESCRIPTIVE, param);
    return { name: field };
  }

  read(schema: unknown, param: string): ResultField[] {
    if (!isObject(schema) || !hasType(schema, 'object') || !isObject(schema.properties) || Object.keys(schema.properties).length === 0) {
      throw refuse(param, `the answer is an object; the schema must say \`type: "object"\` and name properties among ${Object.keys(FILLABLE_FIELDS).join(', ')}.`);
    }
    this.checkKeywords(schema, OBJECT_KEYWORDS, param);
    const properties = schema.properties;
    this.checkRequired(schema, properties, param);
    return Object.entries(properties).map(([name, property]) => this.readField(name, property, join(join(param, 'properties'), name)));
  }
}

/**
 * The fields a JSON schema asks for. A schema is honoured when it describes an object whose properties are all among
 * the result fields the pipeline fills (answer, shortAnswer, question, caption, source, candidates), each with the
 * type it writes and no constraint beyond it.
 *
 * @throws {InvalidConversationError} `unsupported_schema`, whose `param` names the part of the schema that cannot be
 *   met (e.g. `response_format.json_schema.schema.properties.color`).
 *
 * @example
 * ```ts
 * const format = readResultSchema(schema, { param: 'responseFormat.schema', filledBy: 'the pipeline' });
 * formatResultJson(result, format); // '{"shortAnswer":"fishing pole","answer":"..."}'
 * ```
 */
export function readResultSchema(schema: unknown, options: ResultSchemaOptions): Required<ResultJsonFormat> {
  return { fields: new SchemaReader(options.filledBy).read(schema, options.param) };
}

/** The JSON text for a result: `{ answer, shortAnswer }`, or the format's fields in its order. */
export function formatResultJson(result: VqaResult, format: ResultJsonFormat = {}): string {
  if (!format.fields) return JSON.stringify({ answer: result.answer, shortAnswer: result.shortAnswer });
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
