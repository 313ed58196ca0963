import sharp, { type Metadata } from 'sharp';
import { InvalidImageError } from '../errors/index.js';
import { countImagePasses } from '../image/count-image-passes.js';
import { SERVER_DEFAULTS } from './server-defaults.js';
import { describeRefusedBytes, sniffFormat } from '../image/sniff-format.js';
import { trackUncancellable } from '../image/uncancellable-work.js';

// The buffer loaders of the accepted formats; images reach sharp only as buffers (files are read into bytes first).
const NEEDED_LOADERS = ['VipsForeignLoadJpegBuffer', 'VipsForeignLoadPngBuffer', 'VipsForeignLoadWebpBuffer', 'VipsForeignLoadNsgifBuffer', 'VipsForeignLoadTiffBuffer', 'VipsForeignLoadHeifBuffer'];

/**
 * Turns off, process-wide, every libvips loader the pipeline does not need (SVG, PDF, ImageMagick, OpenSlide, FITS,
 * Matlab, JPEG 2000, JPEG XL, RAW, PPM, CSV, vips...). The magic-byte check in `loadImage` already keeps other formats
 * away from sharp; this is the second wall, so that a gap in that check cannot reach librsvg or poppler.
 *
 * @example
 * ```ts
 * hardenImageDecoders();
 * await sharp(svgBytes).metadata(); // throws: unsupported image format
 * ```
 */
export function hardenImageDecoders(): void {
  sharp.block({ operation: ['VipsForeignLoad'] });
  sharp.unblock({ operation: NEEDED_LOADERS });
}

export interface ImageHeaderLimits {
  maxPixels: number;
  maxAspectRatio: number;
  maxFrames: number;
  /** Scans of a progressive JPEG. Default 100 (the server's default). */
  maxJpegScans?: number;
}

/**
 * Checks an uploaded image from its magic bytes and header only (no pixel is decoded), so that a pixel bomb, a
 * banner of 12000x2, a 5000-frame GIF or a PDF is refused before the request takes a slot in the queue. The vision
 * models' `loadImage` checks again when it decodes, with the header compared against what the data holds.
 * A JPEG's scans and a TIFF's directories are counted from the bytes first, in one linear pass, so that neither
 * sharp's header read (which walks every TIFF directory) nor the decode (one pass per scan) ever sees thousands.
 *
 * @throws {InvalidImageError} `empty`, `unsupported_format`, `truncated`, `too_many_pixels` (pixels, frames, scans or
 *   directories), `aspect_ratio`, `too_many_channels`.
 *
 * @example
 * ```ts
 * await checkImageHeader(bytes, { maxPixels: 40_000_000, maxAspectRatio: 32, maxFrames: 1000, maxJpegScans: 100 });
 * ```
 */
export async function checkImageHeader(bytes: Uint8Array, limits: ImageHeaderLimits): Promise<void> {
  if (bytes.byteLength === 0) throw new InvalidImageError('empty', 'The image holds zero bytes.');
  const format = sniffFormat(bytes);
  if (!format) throw new InvalidImageError('unsupported_format', `The image is ${describeRefusedBytes(bytes)}; accepted formats are JPEG, PNG, WebP, GIF, TIFF, HEIF/AVIF.`);
  const maxJpegScans = limits.maxJpegScans ?? SERVER_DEFAULTS.maxJpegScans;
  const passes = countImagePasses(bytes, format, { maxJpegScans, maxTiffDirectories: limits.maxFrames });
  if (passes?.kind === 'jpeg-scans' && passes.count > maxJpegScans) {
    throw new InvalidImageError('too_many_pixels', `The JPEG has more than ${maxJpegScans} scans, each a decoding pass over every pixel; re-encode it as a baseline or ordinary progressive JPEG.`);
  }
  if (passes?.kind === 'tiff-directories' && passes.count > limits.maxFrames) {
    throw new InvalidImageError('too_many_pixels', `The TIFF has more than ${limits.maxFrames} pages (directories), above the server's limit; only the first would be used.`);
  }
  let metadata: Metadata;
  try {
    metadata = await trackUncancellable(sharp(bytes, { limitInputPixels: false, pages: 1 }).metadata());
  } catch (error) {
    // libvips refuses some band counts itself while reading the header; say so rather than "damaged".
    if (/channel limit/i.test(String((error as Error)?.message))) {
      throw new InvalidImageError('too_many_channels', 'The image has more channels than an RGB photo with alpha; at most 5 are accepted.', { cause: error });
    }
    throw new InvalidImageError('truncated', `The image's header cannot be read (${String((error as Error)?.message ?? error).split('\n')[0]}).`, { cause: error });
  }
  const { width, height, pages, channels } = metadata;
  if (!width || !height) throw new InvalidImageError('truncated', 'The image has no readable width and height.');
  if (width * height > limits.maxPixels) {
    throw new InvalidImageError('too_many_pixels', `The image is ${width}x${height} = ${width * height} pixels, above the server's limit of ${limits.maxPixels}.`);
  }
  const ratio = Math.max(width, height) / Math.min(width, height);
  if (ratio > limits.maxAspectRatio) {
    throw new InvalidImageError('aspect_ratio', `The image is ${width}x${height}, an aspect ratio above the server's limit of ${limits.maxAspectRatio}:1.`);
  }
  if ((pages ?? 1) > limits.maxFrames) {
    throw new InvalidImageError('too_many_pixels', `The image has ${pages} frames or pages, above the server's limit of ${limits.maxFrames}; only the first would be used.`);
  }
  if ((channels ?? 0) > 5) throw new InvalidImageError('too_many_channels', `The image has ${channels} channels; at most 5 (CMYK with alpha) are accepted.`);
}
