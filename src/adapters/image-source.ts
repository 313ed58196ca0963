// Images as messages carry them (bytes, base64, data URLs, http(s) URLs), turned into the bytes the chain reads.
// Nothing here reads a file path: message text may come from anyone.
import { InvalidImageError } from '../errors/index.js';
import { hashImageBytes, readImageInput } from '../image/load-image.js';
import { safeFetchImage } from '../net/index.js';
import type { ConversationImage, ConversationMessage } from '../conversation/index.js';
import type { ResolvedAdapterOptions } from './adapter-options.js';

/** An image as a message carried it, before any download. */
export type ImageSource = { kind: 'bytes'; bytes: Uint8Array } | { kind: 'url'; url: URL };

/** An image read from a message; `key` is the bytes' sha256 or the URL, `param` where it sat (`message 1 (user), part 2`). */
export interface PromptImage extends ConversationImage {
  source: ImageSource;
}

/** One message as the adapters read it, for the shared conversation rules. */
export type PromptMessage = ConversationMessage<PromptImage>;

export function imageFromBytes(bytes: Uint8Array, where: string, maxImageBytes: number): PromptImage {
  checkSize(bytes.byteLength, where, maxImageBytes);
  return { source: { kind: 'bytes', bytes }, key: hashImageBytes(bytes), param: where };
}

export function imageFromUrl(url: URL, where: string): PromptImage {
  return { source: { kind: 'url', url }, key: url.href, param: where };
}

function checkSize(bytes: number, where: string, maxImageBytes: number): void {
  if (bytes > maxImageBytes) {
    throw new InvalidImageError('too_many_bytes', `The image at ${where} is about ${bytes} bytes, above maxImageBytes (${maxImageBytes}).`, {
      hint: 'Pass a larger maxImageBytes to the adapter to accept it.',
    });
  }
}

/** Base64 without a data-URL prefix, as the AI SDK passes file data. */
export function imageFromBase64(base64: string, where: string, maxImageBytes: number): PromptImage {
  checkSize(Math.floor((base64.length * 3) / 4), where, maxImageBytes);
  return imageFromBytes(Buffer.from(base64, 'base64'), where, maxImageBytes);
}

/** A data URL or an http(s) URL; anything else (a file path, another scheme) is refused. */
export async function imageFromString(value: string, where: string, maxImageBytes: number): Promise<PromptImage> {
  if (/^data:/i.test(value)) {
    const { bytes } = await readImageInput(value, { allowFiles: false, allowUrls: false, maxBytes: maxImageBytes });
    return imageFromBytes(bytes, where, maxImageBytes);
  }
  if (/^https?:\/\//i.test(value)) {
    try {
      return imageFromUrl(new URL(value), where);
    } catch (error) {
      throw new InvalidImageError('url_refused', `The image at ${where} is not a valid URL.`, { cause: error });
    }
  }
  throw new InvalidImageError('url_refused', `The image at ${where} must be a data URL (data:image/jpeg;base64,...) or an http(s) URL; file paths are not read from messages.`);
}

/** The image's bytes: as given, or downloaded when image URLs are allowed. */
export async function readPromptImage(image: PromptImage, options: ResolvedAdapterOptions, signal?: AbortSignal): Promise<Uint8Array> {
  const { source } = image;
  if (source.kind === 'bytes') return source.bytes;
  if (options.imageUrls === false) {
    throw new InvalidImageError('url_refused', `Refusing to download the image ${source.url.href} (${image.param}): image URLs are off.`, {
      hint: 'Send the image bytes or a data URL, or set imageUrls: true in the adapter options.',
    });
  }
  return safeFetchImage(source.url, { ...options.imageUrls, maxBytes: options.maxImageBytes, signal });
}
