import { ModelDownloadError } from '../../errors/model-download-error.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;

export interface ScopedFetchOptions {
  /** Bearer token, sent only to `tokenOrigin`. */
  token?: string;
  /** The one origin the token may reach (the hub endpoint's). Without it the token is never sent. */
  tokenOrigin?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/** What the hub says about a file along the redirects: huggingface.co puts it on the 302 to the CDN. */
export interface HubHeaders {
  /** sha256 of an LFS file (`X-Linked-Etag`, quotes removed). */
  linkedEtag?: string;
  /** Size of an LFS file (`X-Linked-Size`). */
  linkedSize?: number;
  /** The commit the request resolved to (`X-Repo-Commit`). */
  repoCommit?: string;
}

export interface ScopedResponse extends HubHeaders {
  response: Response;
  /** The URL that answered, after redirects. */
  url: string;
}

/**
 * `fetch` that follows redirects itself so that the bearer token goes to the hub's origin only: a redirect to
 * another origin (the hub's CDN, a mirror's object store) is followed without it, as huggingface_hub does. The
 * hub's file headers (`X-Linked-Etag`, `X-Linked-Size`, `X-Repo-Commit`) are collected from every hop, the 302 to
 * the CDN included, since the CDN does not repeat them.
 *
 * Network failures reject as fetch does (a TypeError with a `cause`); HTTP errors resolve.
 *
 * @example
 * const { response, linkedEtag } = await scopedFetch('https://huggingface.co/owner/name/resolve/main/model.safetensors', {
 *   token: process.env.HF_TOKEN,
 *   tokenOrigin: 'https://huggingface.co',
 * });
 */
export async function scopedFetch(url: string, options: ScopedFetchOptions = {}): Promise<ScopedResponse> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const collected: HubHeaders = {};
  let current = url;
  for (let hop = 0; ; hop += 1) {
    const headers: Record<string, string> = { 'user-agent': 'vqa-llm', ...options.headers };
    if (options.token && options.tokenOrigin !== undefined && new URL(current).origin === options.tokenOrigin) {
      headers.authorization = `Bearer ${options.token}`;
    }
    const response = await fetchImpl(current, { headers, redirect: 'manual', signal: options.signal });
    collectHubHeaders(response.headers, collected);
    const location = response.headers.get('location');
    if (!REDIRECTS.has(response.status) || location === null) return { response, url: current, ...collected };
    await response.body?.cancel().catch(() => undefined);
    if (hop >= MAX_REDIRECTS) {
      throw new ModelDownloadError('http_error', `GET ${url} was redirected more than ${MAX_REDIRECTS} times (last to ${location}).`, {
        hint: 'The hub or a proxy in between loops: check the endpoint (HF_ENDPOINT) and proxy settings.',
      });
    }
    current = new URL(location, current).href;
  }
}

function collectHubHeaders(headers: Headers, into: HubHeaders): void {
  // The first hop that says it wins: that is the hub itself, not whatever the CDN adds.
  const etag = headers.get('x-linked-etag');
  if (into.linkedEtag === undefined && etag !== null) into.linkedEtag = etag.replace(/^W\//, '').replace(/"/g, '').trim();
  const size = headers.get('x-linked-size');
  if (into.linkedSize === undefined && size !== null && /^\d+$/.test(size.trim())) into.linkedSize = Number(size.trim());
  const commit = headers.get('x-repo-commit');
  if (into.repoCommit === undefined && commit !== null) into.repoCommit = commit.trim();
}
