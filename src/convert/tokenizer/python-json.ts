/**
 * JSON text byte-for-byte as the Python exporter writes it (`json.dump(value, indent=2, ensure_ascii=False)` plus a
 * final newline, models/vqa_llm_export/manifest.py write_json), so that a folder converted in Node has the same files,
 * and the same sha256 in its manifest, as one the exporter wrote. Two things JSON.stringify cannot say:
 *  - Python floats keep a fraction or exponent (`0.0`, `1e-05`), ints do not: floats are wrapped in `PythonFloat`.
 *  - Python dicts keep insertion order; JavaScript objects put integer-like keys ("0", "42") first. Objects whose keys
 *    may look like integers (a WordPiece vocabulary) are given as a `Map`.
 */

/**
 * A number that Python holds as a float.
 *
 * @example
 * formatPythonJson([1, new PythonFloat(1)]); // '[\n  1,\n  1.0\n]\n'
 */
export class PythonFloat {
  constructor(readonly value: number) {}
}

export type PythonJson = null | boolean | number | string | PythonFloat | PythonJson[] | Map<string, PythonJson> | { [key: string]: PythonJson };

/**
 * The text `write_json` writes for `value`.
 *
 * @example
 * formatPythonJson({ score: new PythonFloat(0), ids: new Map([['1', 1], ['0', 0]]) });
 * // '{\n  "score": 0.0,\n  "ids": {\n    "1": 1,\n    "0": 0\n  }\n}\n'
 */
export function formatPythonJson(value: PythonJson): string {
  const parts: string[] = [];
  write(value, '', parts);
  parts.push('\n');
  return parts.join('');
}

function write(value: PythonJson, indent: string, parts: string[]): void {
  if (value === null) parts.push('null');
  else if (typeof value === 'boolean') parts.push(value ? 'true' : 'false');
  else if (typeof value === 'number') parts.push(formatInteger(value));
  else if (typeof value === 'string') parts.push(JSON.stringify(value));
  else if (value instanceof PythonFloat) parts.push(formatFloat(value.value));
  else if (Array.isArray(value)) writeContainer('[', ']', value, indent, parts, (item, inner) => write(item, inner, parts));
  else {
    const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
    writeContainer('{', '}', entries, indent, parts, ([key, item], inner) => {
      parts.push(JSON.stringify(key), ': ');
      write(item, inner, parts);
    });
  }
}

function writeContainer<T>(open: string, close: string, items: T[], indent: string, parts: string[], each: (item: T, inner: string) => void): void {
  if (items.length === 0) {
    parts.push(open, close);
    return;
  }
  const inner = `${indent}  `;
  parts.push(open);
  items.forEach((item, index) => {
    parts.push(index === 0 ? '\n' : ',\n', inner);
    each(item, inner);
  });
  parts.push('\n', indent, close);
}

function formatInteger(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`${value} is not an integer: wrap floats in PythonFloat`);
  return String(value);
}

/**
 * Python's `float.__repr__`: the shortest digits that round-trip (the same digits as JavaScript's), in fixed notation
 * when the decimal exponent is in [-4, 16), else as `d.ddde+XX`; `Infinity`/`NaN` as json.dump writes them.
 */
export function formatFloat(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
  if (value === 0) return Object.is(value, -0) ? '-0.0' : '0.0';
  const magnitude = Math.abs(value);
  if (magnitude >= 1e-4 && magnitude < 1e16) {
    // Both languages write this range in fixed notation with the same shortest digits; Python adds ".0" to integers.
    const text = String(value);
    return text.includes('.') ? text : `${text}.0`;
  }
  const sign = value < 0 ? '-' : '';
  // toExponential() without digits gives the shortest round-trip digits: "d.ddde±x".
  const [mantissa, exponentText] = magnitude.toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const exponent = Number(exponentText);
  if (exponent < -4 || exponent >= 16) {
    const fraction = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const power = String(Math.abs(exponent)).padStart(2, '0');
    return `${sign}${digits[0]}${fraction}e${exponent < 0 ? '-' : '+'}${power}`;
  }
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const whole = digits.slice(0, exponent + 1).padEnd(exponent + 1, '0');
  const fraction = digits.slice(exponent + 1);
  return `${sign}${whole}.${fraction === '' ? '0' : fraction}`;
}

/**
 * JSON text read as Python's `json.load` reads it, so that `formatPythonJson` writes what the exporter writes after
 * `json.load` + `write_json`: numbers with a fraction or exponent stay floats (`1.0` stays `1.0`), objects keep
 * their key order (as Maps; a repeated key keeps its first place and its last value, as a dict does).
 *
 * @throws SyntaxError for text that is not JSON.
 * @example
 * formatPythonJson(parsePythonJson('{"2": 1.0, "1": 2}')); // '{\n  "2": 1.0,\n  "1": 2\n}\n'
 */
export function parsePythonJson(text: string): PythonJson {
  let at = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at position ${at}`);
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at]!)) at++;
  };
  const stringToken = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
  const numberToken = /-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/y;
  const readString = (): string => {
    stringToken.lastIndex = at;
    const match = stringToken.exec(text) ?? fail('expected a string');
    at = stringToken.lastIndex;
    return JSON.parse(match[0]) as string;
  };
  const value = (): PythonJson => {
    space();
    const char = text[at];
    if (char === '{') {
      at++;
      const object = new Map<string, PythonJson>();
      space();
      if (text[at] === '}') {
        at++;
        return object;
      }
      for (;;) {
        space();
        const key = readString();
        space();
        if (text[at++] !== ':') fail("expected ':'");
        object.set(key, value());
        space();
        const next = text[at++];
        if (next === '}') return object;
        if (next !== ',') fail("expected ',' or '}'");
      }
    }
    if (char === '[') {
      at++;
      const array: PythonJson[] = [];
      space();
      if (text[at] === ']') {
        at++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        const next = text[at++];
        if (next === ']') return array;
        if (next !== ',') fail("expected ',' or ']'");
      }
    }
    if (char === '"') return readString();
    for (const [literal, result] of [['true', true], ['false', false], ['null', null]] as const) {
      if (text.startsWith(literal, at)) {
        at += literal.length;
        return result;
      }
    }
    numberToken.lastIndex = at;
    const match = numberToken.exec(text) ?? fail('unexpected character');
    at = numberToken.lastIndex;
    const number = Number(match[0]);
    if (match[1] !== undefined || match[2] !== undefined) return new PythonFloat(number);
    if (!Number.isSafeInteger(number)) fail(`the integer ${match[0]} is too large`);
    return number;
  };
  const result = value();
  space();
  if (at < text.length) fail('unexpected text after the JSON value');
  return result;
}
