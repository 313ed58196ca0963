import { safeFetchImage, type UrlPolicy } from '../net/safe-fetch.js';
import { MAX_REDIRECTS } from './image-defaults.js';

export interface FetchImageOptions {
  /** The download is cut off, and refused, as soon as the body passes this many bytes. */
  maxBytes: number;
  /** Limit for the whole download, redirects and body included. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Where URLs may lead. Default for the library: http and https, public addresses only, 3 redirects each re-checked.
   * The server passes its own, stricter policy (https only unless configured).
   */
  policy?: UrlPolicy;
}

/**
 * Downloads an image. All network access of image loading goes through this one function, and it goes through the
 * SSRF-safe fetcher: private, loopback, link-local and metadata addresses are refused, DNS is resolved once and the
 * connection pinned to the vetted address, redirects are re-checked hop by hop, and the body is capped while it
 * streams. To load an image from a private address, download it yourself and pass the bytes.
 *
 * @example
 * const bytes = await fetchImageBytes(new URL('https://example.com/cat.jpg'), { maxBytes: 20 * 1024 * 1024, timeoutMs: 30_000 });
 */
export async function fetchImageBytes(url: URL, options: FetchImageOptions): Promise<Uint8Array> {
  // The library has always fetched plain http for a caller's own URLs; address filtering is what it gains here.
  return safeFetchImage(url, { allowHttp: true, maxRedirects: MAX_REDIRECTS, ...options.policy, maxBytes: options.maxBytes, timeoutMs: options.timeoutMs, signal: options.signal });
}
