import { InvalidImageError } from '../errors/index.js';
import { MAX_REDIRECTS } from './image-defaults.js';

export interface FetchImageOptions {
  /** The download is cut off, and refused, as soon as the body passes this many bytes. */
  maxBytes: number;
  /** Limit for the whole download, redirects and body included. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/**
 * Downloads an image with plain `fetch`. All network access of image loading goes through this one
 * function, so that a hardened version (address filtering against SSRF, proxies) can replace it.
 * Redirects are followed by hand so that their number is bounded and each target's scheme checked.
 *
 * @example
 * const bytes = await fetchImageBytes(new URL('https://example.com/cat.jpg'), { maxBytes: 20 * 1024 * 1024, timeoutMs: 30_000 });
 */
export async function fetchImageBytes(url: URL, options: FetchImageOptions): Promise<Uint8Array> {
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    return await download(url, options.maxBytes, signal);
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout.aborted) {
      throw new InvalidImageError('fetch_failed', `Downloading ${url.href} took longer than fetchTimeoutMs (${options.timeoutMs} ms).`, {
        hint: 'Pass a larger fetchTimeoutMs to loadImage, or download the image yourself and pass its bytes.',
        cause: error,
      });
    }
    if (InvalidImageError.isInstance(error)) throw error;
    // undici reports every network failure as "fetch failed"; the reason (ECONNREFUSED, a TLS error) is its cause.
    const detail = [(error as Error)?.message, ((error as Error)?.cause as Error | undefined)?.message].filter(Boolean).join(': ');
    throw new InvalidImageError('fetch_failed', `Downloading ${url.href} failed: ${detail || String(error)}.`, { cause: error });
  }
}

async function download(start: URL, maxBytes: number, signal: AbortSignal): Promise<Uint8Array> {
  let url = start;
  for (let redirects = 0; ; redirects++) {
    const response = await fetch(url, { redirect: 'manual', signal, headers: { accept: 'image/*' } });
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel();
      if (redirects >= MAX_REDIRECTS) {
        throw new InvalidImageError('fetch_failed', `Downloading ${start.href} was redirected more than ${MAX_REDIRECTS} times.`);
      }
      const next = new URL(location, url);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new InvalidImageError('url_refused', `Downloading ${start.href} was redirected to ${next.protocol} URL, which is not followed.`);
      }
      url = next;
      continue;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new InvalidImageError('fetch_failed', `Downloading ${url.href} failed with HTTP ${response.status} ${response.statusText}.`.trim());
    }
    const declared = Number(response.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes && !response.headers.has('content-encoding')) {
      await response.body?.cancel();
      throw tooManyBytes(url, `${declared} bytes`, maxBytes);
    }
    return readCapped(response, url, maxBytes);
  }
}

// Counts the decoded body as it arrives: Content-Length may be absent, wrong, or describe compressed bytes.
async function readCapped(response: Response, url: URL, maxBytes: number): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooManyBytes(url, `more than ${maxBytes} bytes`, maxBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

function tooManyBytes(url: URL, size: string, maxBytes: number): InvalidImageError {
  return new InvalidImageError('too_many_bytes', `The image at ${url.href} is ${size}, above maxBytes (${maxBytes}).`, {
    hint: 'Pass a larger maxBytes to loadImage to accept it.',
  });
}
