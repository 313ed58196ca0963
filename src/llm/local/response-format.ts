import { toJsonSchema } from '@langchain/core/utils/json_schema';
import type { GbnfJsonSchema } from 'node-llama-cpp';
import { InvalidOptionError } from '../../errors/index.js';

/** What a reply must be, read from the OpenAI-style `response_format` call option. */
export type ReplyFormat = { type: 'text' } | { type: 'json' } | { type: 'json-schema'; schema: GbnfJsonSchema; key: string };

/** Bounds given to strings the schema leaves open, so that the grammar's replies have an end. */
export interface StringBounds {
  minLength: number;
  maxLength: number;
}

type JsonSchema = Record<string, unknown>;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function number(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function unsupported(path: string, what: string): InvalidOptionError {
  return new InvalidOptionError('invalid_value', `The local model cannot constrain ${path} to ${what}: its grammar covers object, array, string, number, integer, boolean, null, enum, const and anyOf/oneOf.`);
}

function convert(schema: unknown, bounds: StringBounds, path: string): GbnfJsonSchema {
  if (schema === true || (isRecord(schema) && Object.keys(schema).filter((key) => key !== 'description' && key !== '$schema').length === 0)) {
    throw unsupported(path, 'any value');
  }
  if (!isRecord(schema)) throw unsupported(path, JSON.stringify(schema));
  if (Array.isArray(schema.enum)) return { enum: schema.enum as (string | number | boolean | null)[] };
  if ('const' in schema) return { const: schema.const as string | number | boolean | null };
  const alternatives = (schema.anyOf ?? schema.oneOf) as unknown;
  if (Array.isArray(alternatives)) return { oneOf: alternatives.map((entry, index) => convert(entry, bounds, `${path}.anyOf[${index}]`)) };
  if (Array.isArray(schema.type)) return { oneOf: schema.type.map((type) => convert({ ...schema, type }, bounds, path)) };
  switch (schema.type) {
    case 'string': {
      // An open string is bounded: a model that never closes the quote would otherwise run to its token limit and
      // leave invalid JSON. An empty field is never an answer, hence at least one character by default.
      const maxLength = Math.min(number(schema.maxLength) ?? bounds.maxLength, bounds.maxLength);
      const minLength = Math.min(number(schema.minLength) ?? bounds.minLength, maxLength);
      return { type: 'string', minLength, maxLength };
    }
    case 'number':
    case 'integer':
    case 'boolean':
    case 'null':
      return { type: schema.type };
    case 'array': {
      if (schema.items === undefined) throw unsupported(`${path}[]`, 'any value');
      const minItems = number(schema.minItems);
      const maxItems = number(schema.maxItems);
      return { type: 'array', items: convert(schema.items, bounds, `${path}[]`), ...(minItems !== undefined ? { minItems } : {}), ...(maxItems !== undefined ? { maxItems } : {}) };
    }
    case 'object': {
      const properties = isRecord(schema.properties) ? schema.properties : {};
      return {
        type: 'object',
        properties: Object.fromEntries(Object.entries(properties).map(([key, value]) => [key, convert(value, bounds, `${path}.${key}`)])),
      };
    }
    default:
      throw unsupported(path, `type ${JSON.stringify(schema.type)}`);
  }
}

/**
 * Reads the `response_format` call option that OpenAI-style callers bind (the VQA chain does, for its answer JSON):
 * `{ type: 'json_schema', json_schema: { schema } }` with a JSON schema or a zod schema, or `{ type: 'json_object' }`.
 * The schema becomes node-llama-cpp's JSON-schema grammar, so a reply is valid by construction; every property of
 * an object is generated, in order, and open strings get `bounds`.
 *
 * @throws {InvalidOptionError} for a schema the grammar cannot express (naming the property).
 *
 * @example
 * ```ts
 * readResponseFormat({ type: 'json_schema', json_schema: { name: 'a', schema: z.object({ answer: z.string() }) } }, { minLength: 1, maxLength: 500 });
 * // { type: 'json-schema', schema: { type: 'object', properties: { answer: { type: 'string', minLength: 1, maxLength: 500 } } }, key: '...' }
 * ```
 */
export function readResponseFormat(responseFormat: unknown, bounds: StringBounds): ReplyFormat {
  if (responseFormat === undefined || responseFormat === null) return { type: 'text' };
  if (!isRecord(responseFormat)) throw new InvalidOptionError('invalid_value', 'response_format must be an object such as { type: "json_schema", json_schema: { schema } }.');
  if (responseFormat.type === 'text') return { type: 'text' };
  if (responseFormat.type === 'json_object') return { type: 'json' };
  if (responseFormat.type !== 'json_schema') throw new InvalidOptionError('invalid_value', `response_format.type ${JSON.stringify(responseFormat.type)} is not one of text, json_object, json_schema.`);
  const holder = isRecord(responseFormat.json_schema) ? responseFormat.json_schema : {};
  if (holder.schema === undefined) throw new InvalidOptionError('invalid_value', 'response_format.json_schema.schema is missing.');
  const jsonSchema = toJsonSchema(holder.schema as Parameters<typeof toJsonSchema>[0]) as JsonSchema;
  const schema = convert(jsonSchema, bounds, 'the reply');
  return { type: 'json-schema', schema, key: JSON.stringify(schema) };
}
