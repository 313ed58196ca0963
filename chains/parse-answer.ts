// Reading the LLM's reply in linear time: the whole reply once it ended, and the `answer` field while it streams.
// Both loops run on the main thread over bytes an LLM endpoint chose, so both are single passes over a capped text.
import { VqaAnswerSchema, type ParseAnswerResult } from '../prompts/vqa-answer.js';

/**
 * The longest reply read, in characters. A usable reply is a short answer (100) and one sentence (500) in a small
 * JSON object; past this the reply is cut off and falls back as `llm_unusable`, whatever follows.
 */
export const MAX_REPLY_CHARS = 16_384;

// Objects nested deeper than this are never the answer (it is an object at the top, or inside one wrapper or two).
const MAX_CANDIDATE_DEPTH = 3;
// JSON.parse attempts per reply: each costs up to the reply's length.
const MAX_CANDIDATES = 32;

/**
 * The balanced `{...}` spans outside JSON strings, nested at most {@link MAX_CANDIDATE_DEPTH} deep, ordered by where
 * they start (outermost first), found in one pass with a stack of open braces.
 */
function findJsonObjects(text: string): string[] {
  const spans: { start: number; end: number }[] = [];
  const open: number[] = [];
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = text.charCodeAt(index);
    if (inString) {
      if (code === 0x5c) index += 1;
      else if (code === 0x22) inString = false;
    } else if (code === 0x22) {
      // A quote only opens a string inside an object: prose around the JSON may hold stray quotes.
      if (open.length > 0) inString = true;
    } else if (code === 0x7b) {
      open.push(index);
    } else if (code === 0x7d && open.length > 0) {
      const start = open.pop()!;
      if (open.length < MAX_CANDIDATE_DEPTH) spans.push({ start, end: index + 1 });
    }
  }
  spans.sort((a, b) => a.start - b.start);
  return spans.slice(0, MAX_CANDIDATES).map((span) => text.slice(span.start, span.end));
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
 * Reads the LLM's reply: bare JSON, JSON in a code fence, or JSON inside prose, in time linear in the reply (one scan
 * for balanced objects, a bounded number of JSON.parse attempts). A reply longer than {@link MAX_REPLY_CHARS} is
 * refused unread. A reply with no object that matches `VqaAnswerSchema` is malformed; it is never passed on as the
 * answer.
 *
 * @example
 * ```ts
 * parseAnswerReply('Sure!\n```json\n{"shortAnswer": "2", "answer": "There are two people."}\n```');
 * // { ok: true, value: { shortAnswer: '2', answer: 'There are two people.' } }
 * ```
 */
export function parseAnswerReply(text: string): ParseAnswerResult | { ok: false; code: 'llm_unusable'; message: string } {
  if (text.length > MAX_REPLY_CHARS) {
    return { ok: false, code: 'llm_unusable', message: `The LLM's reply is longer than ${MAX_REPLY_CHARS} characters; it was not read.` };
  }
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

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

/**
 * Follows a streamed reply and keeps the text of the first JSON object's `answer` field as far as it has arrived,
 * reading each character once (a partial-JSON parse of the whole text per chunk is quadratic in the reply). Keys are
 * matched as `parseAnswerReply` matches them (`answer`, any case); the object is the first `{` of the reply.
 *
 * @example
 * ```ts
 * const scanner = new AnswerFieldScanner();
 * scanner.push('{"shortAnswer":"2","answer":"There are');
 * scanner.answer; // 'There are'
 * ```
 */
export class AnswerFieldScanner {
  /** The answer's text so far; undefined until its string value starts. */
  answer: string | undefined;
  private depth = 0;
  private started = false;
  private finished = false;
  private inString = false;
  private escape = '';
  private stringIsKey = false;
  private expectKey = false;
  private current = '';
  private key = '';
  private capturing = false;

  /** Reads the next piece of the reply. */
  push(text: string): void {
    for (let index = 0; index < text.length && !this.finished; index += 1) this.read(text[index]!);
  }

  private read(character: string): void {
    if (!this.started) {
      if (character === '{') {
        this.started = true;
        this.depth = 1;
        this.expectKey = true;
      }
      return;
    }
    if (this.inString) {
      this.readString(character);
      return;
    }
    if (character === '"') {
      this.inString = true;
      this.stringIsKey = this.depth === 1 && this.expectKey;
      this.current = '';
      this.capturing = !this.stringIsKey && this.depth === 1 && this.key.replace(/[_\s-]/g, '').toLowerCase() === 'answer';
      if (this.capturing) this.answer = '';
    } else if (character === '{' || character === '[') {
      this.depth += 1;
    } else if (character === '}' || character === ']') {
      this.depth -= 1;
      if (this.depth === 0) this.finished = true;
    } else if (this.depth === 1 && character === ',') {
      this.expectKey = true;
    } else if (this.depth === 1 && character === ':') {
      this.expectKey = false;
    }
  }

  private readString(character: string): void {
    if (this.escape) {
      this.escape += character;
      if (this.escape.length === 2 && this.escape !== '\\u') {
        this.append(SIMPLE_ESCAPES[character] ?? character);
        this.escape = '';
      } else if (this.escape.length === 6) {
        const code = Number.parseInt(this.escape.slice(2), 16);
        this.append(Number.isNaN(code) ? '' : String.fromCharCode(code));
        this.escape = '';
      }
      return;
    }
    if (character === '\\') {
      this.escape = '\\';
    } else if (character === '"') {
      this.inString = false;
      if (this.stringIsKey) {
        this.key = this.current;
        this.expectKey = false;
      }
      this.capturing = false;
    } else {
      this.append(character);
    }
  }

  private append(text: string): void {
    // Keys are short; a key longer than this is not `answer` in any spelling, and is not kept growing.
    if (this.stringIsKey) {
      if (this.current.length < 64) this.current += text;
    } else if (this.capturing) {
      this.answer += text;
    }
  }
}
