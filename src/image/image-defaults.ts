import type { ImageLimits } from '../types.js';

/** The limits `loadImage` enforces when an option is not given; the one place they are defined. */
export const DEFAULT_IMAGE_LIMITS: Readonly<Required<ImageLimits>> = Object.freeze({
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 40_000_000,
  minSide: 1,
  maxAspectRatio: 32,
});

/** How long an http(s) download may take, headers and body together. */
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;

/** Redirects followed before a download is given up. */
export const MAX_REDIRECTS = 3;

/**
 * Structure limits `loadImage` checks from the bytes before sharp reads them: scans of a progressive JPEG (each a
 * decoding pass over every pixel; encoders write about ten, and a file can hold 2,646 valid ones) and directories of a
 * TIFF (libtiff walks them all to count pages). Generous for the library, whose caller chose the file; the server
 * refuses far fewer scans (`maxJpegScans`, 100) before a request is queued.
 */
export const DEFAULT_STRUCTURE_LIMITS = Object.freeze({ maxJpegScans: 1000, maxTiffDirectories: 1000 });
