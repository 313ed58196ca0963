import { z } from 'zod';

/**
 * What the LLM must reply with. Sent as the `response_format` JSON schema to models that support structured
 * output, and used to validate every reply, structured or not.
 *
 * @example
 * ```ts
 * VqaAnswerSchema.parse({ shortAnswer: 'fishing pole', answer: 'The man is holding a fishing pole.' });
 * ```
 */
export const VqaAnswerSchema = z
  .object({
    shortAnswer: z.string().describe('The answer in a few words, e.g. "fishing pole" or "2".'),
    answer: z.string().describe('One fluent sentence that answers the question.'),
  })
  .describe('The answer to a question about a photo.');

export type VqaAnswer = z.infer<typeof VqaAnswerSchema>;

export type ParseAnswerResult =
  | { ok: true; value: VqaAnswer }
  | { ok: false; code: 'llm_empty' | 'llm_malformed'; message: string };

// Objects found in the text, outermost first, each a balanced {...} outside of JSON strings.
function findJsonObjects(text: string): string[] {
  const objects: string[] = [];
  for (let start = text.indexOf('{'); start !== -1; start = text.indexOf('{', start + 1)) {
    let depth = 0;
    let inString = false;
    let escaped = false;
    for (let index = start; index < text.length; index += 1) {
      const character = text[index];
      if (inString) {
        if (escaped) escaped = false;
        else if (character === '\\') escaped = true;
        else if (character === '"') inString = false;
      } else if (character === '"') inString = true;
      else if (character === '{') depth += 1;
      else if (character === '}') {
        depth -= 1;
        if (depth === 0) {
          objects.push(text.slice(start, index + 1));
          break;
        }
      }
    }
  }
  return objects;
}

// Models trained on Python write short_answer; some capitalise keys. The meaning is the same.
function normaliseKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const result: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(value)) {
    const compact = key.replace(/[_\s-]/g, '').toLowerCase();
    if (compact === 'shortanswer') result.shortAnswer = entry;
    else if (compact === 'answer') result.answer = entry;
  }
  return result;
}

/**
 * Reads the LLM's reply: bare JSON, JSON in a code fence, or JSON inside prose. A reply with no object that
 * matches {@link VqaAnswerSchema} is malformed; it is never passed on as the answer.
 *
 * @example
 * ```ts
 * parseAnswerText('Sure!\n```json\n{"shortAnswer": "2", "answer": "There are two people."}\n```');
 * // { ok: true, value: { shortAnswer: '2', answer: 'There are two people.' } }
 * ```
 */
export function parseAnswerText(text: string): ParseAnswerResult {
  if (text.trim().length === 0) return { ok: false, code: 'llm_empty', message: 'The LLM replied with nothing.' };
  for (const candidate of findJsonObjects(text)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(candidate);
    } catch {
      continue;
    }
    const checked = VqaAnswerSchema.safeParse(normaliseKeys(parsed));
    if (checked.success) return { ok: true, value: checked.data };
  }
  const excerpt = text.length > 120 ? `${text.slice(0, 120)}…` : text;
  return {
    ok: false,
    code: 'llm_malformed',
    message: `The LLM's reply has no JSON object with string fields shortAnswer and answer: ${JSON.stringify(excerpt)}.`,
  };
}
