// The JSON body parser: the framework's own (prototype-poisoning checks included), behind a linear depth check.
import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-error.js';

const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The deepest nesting of objects and arrays in JSON text, counted in one pass without parsing, and given up on as
 * soon as it passes `limit` (so the cost is linear and the answer is `limit + 1` for anything deeper). Strings are
 * skipped, escapes included; text that is not JSON gets some number, and JSON.parse refuses it afterwards.
 *
 * @example
 * ```ts
 * jsonNestingDepth('{"a":[1,{"b":2}]}', 64); // 3
 * jsonNestingDepth('['.repeat(1e6), 64); // 65
 * ```
 */
export function jsonNestingDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === BACKSLASH) index += 1;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) {
      inString = true;
    } else if (code === OPEN_OBJECT || code === OPEN_ARRAY) {
      depth += 1;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (code === CLOSE_OBJECT || code === CLOSE_ARRAY) {
      depth -= 1;
    }
  }
  return deepest;
}

/**
 * Replaces the JSON parser: a body nested deeper than `maxDepth` is refused (400 `json_too_deep`) before JSON.parse
 * sees it. V8 parses ten million levels of `[` without a stack overflow, but it takes seconds of the event loop and a
 * gigabyte; no request this server reads needs more than a dozen levels.
 *
 * @example
 * ```ts
 * registerJsonBodyParser(app, { maxDepth: 64 });
 * ```
 */
export function registerJsonBodyParser(app: FastifyInstance, options: { maxDepth: number }): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (jsonNestingDepth(text, options.maxDepth) > options.maxDepth) {
      done(new ApiError(400, 'json_too_deep', `The JSON body nests objects or arrays more than ${options.maxDepth} levels deep.`), undefined);
      return;
    }
    parse(request, text, done);
  });
}
