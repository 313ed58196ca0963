import { safeFetchImage, type UrlPolicy } from '../net/safe-fetch.js';
import { MAX_REDIRECTS } from './image-defaults.js';

export interface FetchImageOptions {
  /** The download is cut off, and refused, as soon as the body passes this many bytes. */
  maxBytes: number;
  /** Limit for the whole download, redirects and body included. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Where URLs may lead. Default for the library: http and https, any address (the caller chose the URL, as it
   * chooses file paths), 3 redirects. The server fetches strangers' URLs with its own strict policy instead.
   */
  policy?: UrlPolicy;
}

/**
 * Downloads an image for the library's `loadImage`. All network access of image loading goes through the SSRF-safe
 * fetcher (`src/net/safe-fetch.ts`): DNS resolved once and the connection pinned, redirects re-checked hop by hop,
 * the body capped while it streams, the type sniffed from the first bytes. The library trusts its caller's URLs as it
 * trusts file paths, so private addresses are allowed here unless `policy` says otherwise; code that passes on URLs
 * from strangers must use the server (strict by default) or `safeFetchImage` with its defaults.
 *
 * @example
 * const bytes = await fetchImageBytes(new URL('https://example.com/cat.jpg'), { maxBytes: 20 * 1024 * 1024, timeoutMs: 30_000 });
 */
export async function fetchImageBytes(url: URL, options: FetchImageOptions): Promise<Uint8Array> {
  return safeFetchImage(url, {
    allowHttp: true,
    allowPrivateAddresses: true,
    maxRedirects: MAX_REDIRECTS,
    timeoutOptionName: 'fetchTimeoutMs',
    ...options.policy,
    maxBytes: options.maxBytes,
    timeoutMs: options.timeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
