import { createHash } from 'node:crypto';

import sharp, { type Metadata, type OutputInfo } from 'sharp';

import { InvalidImageError, InvalidOptionError } from '../errors/index.js';
import type { ImageInput, ImageLimits, LoadedImage } from '../types.js';
import { countImagePasses } from './count-image-passes.js';
import { DEFAULT_FETCH_TIMEOUT_MS, DEFAULT_IMAGE_LIMITS, DEFAULT_STRUCTURE_LIMITS } from './image-defaults.js';
import { trackUncancellable } from './uncancellable-work.js';
import { readImageBytes, type ImageBytes } from './read-image-bytes.js';
import { ACCEPTED_FORMATS, describeRefusedBytes, sniffFormat, type AcceptedFormat } from './sniff-format.js';

export interface LoadImageOptions extends ImageLimits {
  signal?: AbortSignal;
  /** Accept file paths and `file:` URLs. Default true; a server taking user input should pass false. */
  allowFiles?: boolean;
  /** Accept http(s) URLs. Default true; a server taking user input should pass false until SSRF filtering exists. */
  allowUrls?: boolean;
  /** Limit for a whole download, redirects and body included. Default 30 000 ms. */
  fetchTimeoutMs?: number;
}

const FORMAT_LIST = 'JPEG, PNG, WebP, GIF, TIFF, HEIF/AVIF';

/**
 * Loads, validates and decodes an image into 8-bit sRGB RGB pixels.
 *
 * The format is decided by the bytes alone, and limits are checked from the header before any
 * pixel is decoded. EXIF orientation is applied, transparency is flattened onto white, only the
 * first frame of an animation is kept. Every failure is an `InvalidImageError` with a `reason`.
 *
 * @example
 * const image = await loadImage('photos/dogs.jpg', { maxPixels: 20_000_000 });
 * console.log(image.width, image.height, image.hash);
 * const same = await loadImage(image); // already loaded: returned as is
 */
export async function loadImage(input: ImageInput, options: LoadImageOptions = {}): Promise<LoadedImage> {
  const settings = resolveOptions(options);
  settings.signal?.throwIfAborted();
  if (isLoadedImage(input)) return checkLoadedImage(input);

  const { bytes, source } = await readImageBytes(input, settings);
  return decodeImageBytes(bytes, source, settings);
}

/**
 * The part of `loadImage` after the bytes are read: limits, format check, decode. For callers that first look the
 * bytes' hash up in a cache (see `hashImageBytes`) and decode only on a miss.
 *
 * @example
 * const { bytes, source } = await readImageBytes('photo.jpg', options);
 * const image = cache.has(hashImageBytes(bytes)) ? undefined : await decodeImageBytes(bytes, source);
 */
export async function decodeImageBytes(bytes: Uint8Array, source: string, options: LoadImageOptions = {}): Promise<LoadedImage> {
  const settings = resolveOptions(options);
  settings.signal?.throwIfAborted();
  if (bytes.byteLength === 0) throw new InvalidImageError('empty', `${source} holds zero bytes.`);
  if (bytes.byteLength > settings.maxBytes) {
    throw new InvalidImageError('too_many_bytes', `${source} is ${bytes.byteLength} bytes, above maxBytes (${settings.maxBytes}).`, {
      hint: 'Pass a larger maxBytes to loadImage to accept it.',
    });
  }

  const sniffed = sniffFormat(bytes);
  if (!sniffed) {
    throw new InvalidImageError('unsupported_format', `${source} is ${describeRefusedBytes(bytes)}; accepted formats are ${FORMAT_LIST}.`);
  }
  checkPasses(bytes, sniffed, source);
  const format = await readHeader(bytes, sniffed, source, settings);
  settings.signal?.throwIfAborted();
  const decoded = await decode(bytes, source, settings.maxPixels);
  return {
    kind: 'loaded-image',
    data: decoded.data,
    width: decoded.width,
    height: decoded.height,
    format,
    hash: hashImageBytes(bytes),
    byteLength: bytes.byteLength,
  };
}

/**
 * Reads an encoded image's bytes from any `ImageInput` but a loaded image (files, URLs, data URLs, buffers), with
 * the same permissions and byte limit as `loadImage`, without decoding them.
 */
export async function readImageInput(input: Exclude<ImageInput, LoadedImage>, options: LoadImageOptions = {}): Promise<ImageBytes> {
  const settings = resolveOptions(options);
  settings.signal?.throwIfAborted();
  return readImageBytes(input, settings);
}

/** The cache key of an image: sha256 (hex) of its encoded bytes. */
export function hashImageBytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

type ResolvedOptions = Required<ImageLimits> & { allowFiles: boolean; allowUrls: boolean; fetchTimeoutMs: number; signal?: AbortSignal };

function resolveOptions(options: LoadImageOptions): ResolvedOptions {
  const resolved: ResolvedOptions = {
    maxBytes: positive('maxBytes', options.maxBytes ?? DEFAULT_IMAGE_LIMITS.maxBytes),
    maxPixels: positive('maxPixels', options.maxPixels ?? DEFAULT_IMAGE_LIMITS.maxPixels),
    minSide: positive('minSide', options.minSide ?? DEFAULT_IMAGE_LIMITS.minSide),
    maxAspectRatio: positive('maxAspectRatio', options.maxAspectRatio ?? DEFAULT_IMAGE_LIMITS.maxAspectRatio),
    fetchTimeoutMs: positive('fetchTimeoutMs', options.fetchTimeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS),
    allowFiles: options.allowFiles ?? true,
    allowUrls: options.allowUrls ?? true,
    signal: options.signal,
  };
  if (resolved.maxAspectRatio < 1) {
    throw new InvalidOptionError('invalid_value', `maxAspectRatio must be at least 1 (long side / short side), got ${resolved.maxAspectRatio}.`);
  }
  return resolved;
}

function positive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0) || Number.isNaN(value)) {
    throw new InvalidOptionError('invalid_value', `${name} must be a positive number, got ${String(value)}.`);
  }
  return value;
}

/** True for an image `loadImage` already decoded (passed through as is). */
export function isLoadedImage(input: ImageInput): input is LoadedImage {
  return typeof input === 'object' && input !== null && !(input instanceof Uint8Array) && !(input instanceof ArrayBuffer) && !(input instanceof URL) && (input as { kind?: unknown }).kind === 'loaded-image';
}

// A hand-built LoadedImage with the wrong buffer size would make every later step read out of bounds.
function checkLoadedImage(image: LoadedImage): LoadedImage {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || !(data instanceof Uint8Array) || data.length !== width * height * 3) {
    throw new InvalidOptionError('invalid_value', `The loaded image is inconsistent: ${width}x${height} needs ${width * height * 3} RGB bytes, it has ${data?.length}.`);
  }
  return image;
}

// Before sharp: a progressive JPEG of thousands of scans or a TIFF of thousands of directories costs the decoder
// seconds to minutes while being a small, valid file; counted from the bytes in one linear pass.
function checkPasses(bytes: Uint8Array, format: AcceptedFormat, source: string): void {
  const passes = countImagePasses(bytes, format, DEFAULT_STRUCTURE_LIMITS);
  if (passes?.kind === 'jpeg-scans' && passes.count > DEFAULT_STRUCTURE_LIMITS.maxJpegScans) {
    throw new InvalidImageError('too_many_pixels', `${source} is a JPEG of more than ${DEFAULT_STRUCTURE_LIMITS.maxJpegScans} scans, each a decoding pass over every pixel.`, {
      hint: 'Re-encode it as a baseline or ordinary progressive JPEG.',
    });
  }
  if (passes?.kind === 'tiff-directories' && passes.count > DEFAULT_STRUCTURE_LIMITS.maxTiffDirectories) {
    throw new InvalidImageError('too_many_pixels', `${source} is a TIFF of more than ${DEFAULT_STRUCTURE_LIMITS.maxTiffDirectories} directories; only the first page is used.`, {
      hint: 'Save the page you mean as an image of its own.',
    });
  }
}

async function readHeader(bytes: Uint8Array, sniffed: AcceptedFormat, source: string, limits: ResolvedOptions): Promise<AcceptedFormat> {
  let metadata: Metadata;
  try {
    // No pixel limit here: a header read decodes nothing, and our own check below reports the numbers.
    metadata = await trackUncancellable(sharp(bytes, { limitInputPixels: false, pages: 1, failOn: 'truncated' }).metadata());
  } catch (error) {
    throw decodeError(error, source);
  }
  const format = metadata.format as string;
  if (!(ACCEPTED_FORMATS as readonly string[]).includes(format) || format !== sniffed) {
    throw new InvalidImageError('unsupported_format', `${source} looks like ${sniffed} but decodes as ${format}; accepted formats are ${FORMAT_LIST}.`);
  }
  const { width, height } = metadata;
  if (!width || !height) throw new InvalidImageError('truncated', `${source} has no readable width and height.`);
  const size = `${width}x${height}`;
  if (width * height > limits.maxPixels) {
    throw new InvalidImageError('too_many_pixels', `${source} is ${size} = ${width * height} pixels, above maxPixels (${limits.maxPixels}).`, {
      hint: 'Pass a larger maxPixels to loadImage to accept it.',
    });
  }
  if (Math.min(width, height) < limits.minSide) {
    throw new InvalidImageError('too_small', `${source} is ${size}; both sides must be at least minSide (${limits.minSide}).`, {
      hint: 'Pass a smaller minSide to loadImage to accept it.',
    });
  }
  const ratio = Math.max(width, height) / Math.min(width, height);
  if (ratio > limits.maxAspectRatio) {
    throw new InvalidImageError('aspect_ratio', `${source} is ${size}, an aspect ratio of ${formatRatio(ratio)}:1, above maxAspectRatio (${limits.maxAspectRatio}).`, {
      hint: 'Pass a larger maxAspectRatio to loadImage to accept it.',
    });
  }
  // CMYK with alpha is the most an accepted photo carries; more bands are scientific data, not a picture.
  if ((metadata.channels ?? 0) > 5) {
    throw new InvalidImageError('too_many_channels', `${source} has ${metadata.channels} channels; at most 5 (CMYK with alpha) are accepted.`);
  }
  return sniffed;
}

async function decode(bytes: Uint8Array, source: string, maxPixels: number): Promise<{ data: Uint8Array; width: number; height: number }> {
  let result: { data: Buffer; info: OutputInfo };
  try {
    // Tracked: libvips cannot be stopped mid-decode, so a server keeps the request's slot until this ends.
    result = await trackUncancellable(sharp(bytes, {
      // A truncated file must fail rather than come back padded with grey.
      failOn: 'truncated',
      // Again at decode time: the header above may lie about what the data holds.
      limitInputPixels: Math.max(1, Math.floor(maxPixels)),
      pages: 1,
      page: 0,
      autoOrient: true,
      // PIL, and so every Hugging Face processor the models were trained with, ignores embedded
      // ICC profiles; converting through them would shift colours away from what the models saw.
      ignoreIcc: true,
    })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }));
  } catch (error) {
    throw decodeError(error, source);
  }
  const { data, info } = result;
  if (info.channels !== 3) {
    throw new InvalidImageError('too_many_channels', `${source} decoded to ${info.channels} channels instead of RGB.`);
  }
  // A plain Uint8Array over the same memory: Buffer methods are not part of the contract, copying is not needed.
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
}

function decodeError(error: unknown, source: string): InvalidImageError {
  const message = (error as Error)?.message ?? String(error);
  const firstLine = message.split('\n')[0]!;
  if (/unsupported image format/i.test(message)) {
    return new InvalidImageError('unsupported_format', `${source} is not an image sharp can read; accepted formats are ${FORMAT_LIST}.`, { cause: error });
  }
  if (/pixel limit/i.test(message)) {
    return new InvalidImageError('too_many_pixels', `${source} holds more pixels than its header declared, above maxPixels.`, {
      hint: 'Pass a larger maxPixels to loadImage to accept it.',
      cause: error,
    });
  }
  if (/compression format has not been built in|no decoder|unsupported codec|hevc/i.test(message)) {
    return new InvalidImageError('unsupported_format', `${source} uses a codec this build of sharp cannot decode (${firstLine}).`, { cause: error });
  }
  // Everything else (premature end, bad CRC, corrupt markers) means the bytes are damaged.
  return new InvalidImageError('truncated', `${source} is truncated or damaged and cannot be decoded (${firstLine}).`, { cause: error });
}

function formatRatio(ratio: number): string {
  return Number.isInteger(ratio) ? String(ratio) : ratio.toFixed(2);
}
