import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

import { InvalidImageError, InvalidOptionError } from '../errors/index.js';
import { fetchImageBytes } from './fetch-image.js';

export interface ReadImageBytesOptions {
  maxBytes: number;
  allowFiles: boolean;
  allowUrls: boolean;
  fetchTimeoutMs: number;
  signal?: AbortSignal;
}

export interface ImageBytes {
  bytes: Uint8Array;
  /** Where the bytes came from, as the subject of an error message: "The file photos/a.jpg". */
  source: string;
}

/**
 * Turns every encoded kind of `ImageInput` into bytes: file paths, `file:`, `http(s):` and `data:` URLs,
 * and binary buffers. The size limit is enforced before or while reading, never after.
 */
export async function readImageBytes(input: string | URL | Uint8Array | ArrayBuffer, options: ReadImageBytesOptions): Promise<ImageBytes> {
  if (input instanceof Uint8Array) return { bytes: input, source: 'The given bytes' };
  if (input instanceof ArrayBuffer) return { bytes: new Uint8Array(input), source: 'The given bytes' };
  if (input instanceof URL) return readUrl(input, options);
  if (typeof input !== 'string') {
    throw new InvalidOptionError('invalid_value', `loadImage expects a path, a URL, bytes or a loaded image, got ${describeValue(input)}.`);
  }
  if (input.length === 0) throw new InvalidImageError('empty', 'The image path is an empty string.');
  if (/^data:/i.test(input)) return { bytes: decodeDataUrl(input, options.maxBytes), source: 'The data URL' };
  if (/^(https?|file):/i.test(input)) {
    let url: URL;
    try {
      url = new URL(input);
    } catch (error) {
      throw new InvalidImageError('url_refused', `${JSON.stringify(input)} is not a valid URL.`, { cause: error });
    }
    return readUrl(url, options);
  }
  // Anything else with "scheme://" is a URL we do not speak, not a relative path.
  const scheme = /^([a-z][a-z0-9+.-]+):\/\//i.exec(input);
  if (scheme) throw new InvalidImageError('url_refused', `${scheme[1]}: URLs are not supported; use a file path, an http(s) or a data URL, or bytes.`);
  return readFile(input, options);
}

async function readUrl(url: URL, options: ReadImageBytesOptions): Promise<ImageBytes> {
  switch (url.protocol) {
    case 'data:':
      return { bytes: decodeDataUrl(url.href, options.maxBytes), source: 'The data URL' };
    case 'file:':
      return readFile(fileURLToPath(url), options);
    case 'http:':
    case 'https:':
      if (!options.allowUrls) {
        throw new InvalidImageError('url_refused', `Refusing to download ${url.href}: allowUrls is false.`, {
          hint: 'Pass allowUrls: true to loadImage, or pass the image bytes.',
        });
      }
      return { bytes: await fetchImageBytes(url, { ...options, timeoutMs: options.fetchTimeoutMs }), source: `The image at ${url.href}` };
    default:
      throw new InvalidImageError('url_refused', `${url.protocol} URLs are not supported; use a file path, an http(s) or a data URL, or bytes.`);
  }
}

async function readFile(path: string, options: ReadImageBytesOptions): Promise<ImageBytes> {
  if (!options.allowFiles) {
    throw new InvalidImageError('url_refused', `Refusing to read the file ${path}: allowFiles is false.`, {
      hint: 'Pass allowFiles: true to loadImage, or pass the image bytes.',
    });
  }
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' || code === 'EPERM' ? 'cannot be read (permission denied)' : `cannot be opened (${code ?? 'unknown error'})`;
    throw new InvalidImageError('not_found', `The image file ${path} ${what}.`, { cause: error });
  }
  try {
    // Size checked on the open handle, so a file swapped after the check cannot slip past it.
    const stats = await handle.stat();
    if (!stats.isFile()) throw new InvalidImageError('not_found', `${path} is not a file.`);
    if (stats.size > options.maxBytes) throw tooManyBytes(path, stats.size, options.maxBytes);
    const bytes = await handle.readFile({ signal: options.signal });
    if (bytes.byteLength > options.maxBytes) throw tooManyBytes(path, bytes.byteLength, options.maxBytes);
    return { bytes, source: `The file ${path}` };
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (InvalidImageError.isInstance(error)) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new InvalidImageError('not_found', `The image file ${path} cannot be read (${code ?? (error as Error).message}).`, { cause: error });
  } finally {
    await handle.close();
  }
}

/**
 * Decodes `data:[type][;base64],payload`. The declared type is ignored on purpose: the bytes decide.
 * Follows the WHATWG data URL rules closely enough for images: percent-decoding of the UTF-8 payload,
 * then base64 with whitespace removed.
 */
export function decodeDataUrl(url: string, maxBytes: number): Uint8Array {
  const comma = url.indexOf(',');
  if (comma < 0) throw new InvalidImageError('unsupported_format', 'The data URL has no "," before its payload.');
  const header = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  const isBase64 = /;\s*base64\s*$/i.test(header);
  // The cheap bound first, so the exact count runs only for payloads near the limit; both come before decoding.
  const bound = isBase64 ? Math.floor((payload.length * 3) / 4) : payload.length;
  if (bound > maxBytes && estimateDecodedSize(payload, isBase64) > maxBytes) {
    throw new InvalidImageError('too_many_bytes', `The data URL holds about ${estimateDecodedSize(payload, isBase64)} bytes, above maxBytes (${maxBytes}).`, {
      hint: 'Pass a larger maxBytes to loadImage to accept it.',
    });
  }
  const decoded = percentDecode(payload);
  if (!isBase64) return decoded;
  const text = Buffer.from(decoded).toString('latin1').replace(/[\t\n\f\r ]/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.replace(/=+$/, '').length % 4 === 1) {
    throw new InvalidImageError('unsupported_format', 'The data URL says base64 but its payload is not valid base64.');
  }
  return Buffer.from(text, 'base64');
}

// Hex digit values by byte, -1 for anything else: one table lookup per byte instead of a regex or a parseInt.
const HEX = new Int8Array(256).fill(-1);
for (let digit = 0; digit < 16; digit++) {
  HEX['0123456789abcdef'.charCodeAt(digit)] = digit;
  HEX['0123456789ABCDEF'.charCodeAt(digit)] = digit;
}

function estimateDecodedSize(payload: string, isBase64: boolean): number {
  let escapes = 0;
  for (let index = 0; index + 2 < payload.length; index++) {
    if (payload.charCodeAt(index) !== 0x25) continue;
    const high = payload.charCodeAt(index + 1);
    const low = payload.charCodeAt(index + 2);
    if (high < 256 && low < 256 && HEX[high]! >= 0 && HEX[low]! >= 0) {
      escapes++;
      index += 2;
    }
  }
  const length = payload.length - 2 * escapes;
  return isBase64 ? Math.floor((length * 3) / 4) : length;
}

// Percent-decoding in one plain pass over the UTF-8 bytes with a lookup table: a data URL of escapes costs a few times
// its base64 form, where a parseInt per escape cost twenty times more on the event loop.
function percentDecode(text: string): Uint8Array {
  const input = Buffer.from(text, 'utf8');
  if (!input.includes(0x25)) return input;
  const output = new Uint8Array(input.length);
  let length = 0;
  for (let index = 0; index < input.length; index++) {
    const byte = input[index]!;
    if (byte === 0x25 && index + 2 < input.length) {
      const high = HEX[input[index + 1]!]!;
      const low = HEX[input[index + 2]!]!;
      if (high >= 0 && low >= 0) {
        output[length++] = (high << 4) | low;
        index += 2;
        continue;
      }
    }
    output[length++] = byte;
  }
  return output.subarray(0, length);
}

function tooManyBytes(path: string, size: number, maxBytes: number): InvalidImageError {
  return new InvalidImageError('too_many_bytes', `The image file ${path} is ${size} bytes, above maxBytes (${maxBytes}).`, {
    hint: 'Pass a larger maxBytes to loadImage to accept it.',
  });
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${Object.prototype.toString.call(value)})`;
  return typeof value;
}
