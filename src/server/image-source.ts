import { decodeDataUrl } from '../image/read-image-bytes.js';
import { safeFetchImage, type UrlPolicy } from '../net/safe-fetch.js';
import { ApiError } from './api-error.js';

/**
 * Downloads an image URL a client sent. The server's only network access on a client's behalf goes through this
 * function type, so that an SSRF-safe fetcher (address pinning, allowlists) can be injected without touching routes.
 */
export type ImageFetcher = (url: URL, options: { maxBytes: number; signal?: AbortSignal }) => Promise<Uint8Array>;

/**
 * The SSRF-safe fetcher with a policy: https only unless `allowHttp`, public addresses only, the connection pinned to
 * the vetted address, redirects re-checked. Only used when the server's `allowImageUrls` is on.
 *
 * @example
 * ```ts
 * const fetchImage = createImageFetcher({ allowedHosts: ['*.wikimedia.org'], timeoutMs: 10_000 });
 * ```
 */
export function createImageFetcher(policy: UrlPolicy = {}): ImageFetcher {
  return (url, options) => safeFetchImage(url, { ...policy, maxBytes: options.maxBytes, ...(options.signal ? { signal: options.signal } : {}) });
}

/** {@link createImageFetcher} with the default policy. */
export const defaultImageFetcher: ImageFetcher = createImageFetcher();

export interface ImageSourceOptions {
  allowImageUrls: boolean;
  maxImageBytes: number;
  fetchImage: ImageFetcher;
  signal?: AbortSignal;
  /** Where the image sat in the request, for the error's `param`. */
  param: string;
}

/**
 * Turns an image reference from a request into bytes. Only data URLs and (when enabled) http(s) URLs are
 * accepted; file paths and other schemes never are, so a client cannot make the server read its own disk.
 */
export async function readImageSource(reference: string, options: ImageSourceOptions): Promise<Uint8Array> {
  if (/^data:/i.test(reference)) return decodeDataUrl(reference, options.maxImageBytes);
  if (/^https?:\/\//i.test(reference)) {
    if (!options.allowImageUrls) {
      throw new ApiError(400, 'image_url_not_allowed', 'This server accepts images as data URLs only (data:image/jpeg;base64,...); fetching image URLs is off.', {
        param: options.param,
      });
    }
    let url: URL;
    try {
      url = new URL(reference);
    } catch {
      throw new ApiError(400, 'invalid_image_url', 'The image URL is not a valid URL.', { param: options.param });
    }
    return options.fetchImage(url, { maxBytes: options.maxImageBytes, signal: options.signal });
  }
  throw new ApiError(400, 'invalid_image_url', 'The image must be a data URL (data:image/jpeg;base64,...)' + (options.allowImageUrls ? ' or an http(s) URL.' : '.'), {
    param: options.param,
  });
}
