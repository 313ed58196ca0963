import { ModelDownloadError } from '../../errors/model-download-error.js';
import { VqaLlmError } from '../../errors/vqa-llm-error.js';
import { MODEL_ENV } from '../defaults.js';
import type { HubEndpoint } from './hub-endpoint.js';
import type { HubRetryOptions } from './hub-types.js';
import { hubHttpError, rateLimitedError } from './hub-http-error.js';
import { scopedFetch, type HubHeaders } from './scoped-fetch.js';

/** Everything a request to the hub needs to know, and to say in its errors. */
export interface HubRequestContext {
  endpoint: HubEndpoint;
  repo: string;
  revision: string;
  token?: string;
  fetch: typeof fetch;
  signal?: AbortSignal;
  retry: Required<HubRetryOptions>;
  stallTimeoutMs: number;
}

/** An open response: keep calling `alive()` while its body flows, and `release()` when done with it. */
export interface OpenHubResponse extends HubHeaders {
  response: Response;
  url: string;
  /** Restarts the stall timer (call on every chunk). */
  alive(): void;
  /** Stops the stall timer and detaches from the caller's signal. */
  release(): void;
  /** True when the body failed because nothing arrived for `stallTimeoutMs`. */
  stalled(): boolean;
}

/** Marks an attempt dropped for sending nothing. */
class StallTimeout extends Error {}

export const DEFAULT_RETRY: Required<HubRetryOptions> = { attempts: 5, minDelayMs: 1000, maxDelayMs: 60_000 };
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/**
 * GETs `url` from the hub with the token scoped to the endpoint's origin, retrying 429 (honouring `Retry-After`),
 * 5xx and network errors with exponential back-off. Resolves with a 2xx response; every other outcome is a typed
 * error that says what to do: 401/403 name HF_TOKEN and the repository page, 404 says whether the repository, the
 * revision or the file is missing.
 *
 * @internal
 * @example
 * const open = await openHubResponse(`${endpoint.url}/api/models/${repo}`, context, { what: 'listing' });
 * try { return await open.response.json(); } finally { open.release(); }
 */
export async function openHubResponse(
  url: string,
  context: HubRequestContext,
  request: { what: 'listing' | 'file'; file?: string; headers?: Record<string, string>; attempts?: number },
): Promise<OpenHubResponse> {
  const attempts = Math.max(1, request.attempts ?? context.retry.attempts);
  let lastProblem = '';
  for (let attempt = 1; ; attempt += 1) {
    context.signal?.throwIfAborted();
    const open = watch(context);
    let delayMs: number;
    try {
      const result = await scopedFetch(url, {
        token: context.token,
        tokenOrigin: context.endpoint.origin,
        headers: request.headers,
        signal: open.signal,
        fetch: context.fetch,
      });
      const { response } = result;
      if (response.ok) return { ...result, alive: open.alive, release: open.release, stalled: open.stalled };
      open.release();
      const retryAfter = response.headers.get('retry-after');
      const errorMessage = response.headers.get('x-error-message');
      await response.body?.cancel().catch(() => undefined);
      if (response.status !== 429 && response.status < 500) throw hubHttpError(response, url, context, request);
      lastProblem = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}${errorMessage ? ` (${errorMessage})` : ''}`;
      const asked = parseRetryAfter(retryAfter);
      if (response.status === 429 && asked !== undefined && asked > context.retry.maxDelayMs) {
        throw rateLimitedError(url, `asked to wait ${Math.ceil(asked / 1000)} s`);
      }
      if (attempt >= attempts) {
        if (response.status === 429) throw rateLimitedError(url, `answered 429 Too Many Requests ${attempts} times`);
        throw new ModelDownloadError('http_error', `GET ${url} answered ${lastProblem}, ${attempts} times.`, {
          hint: `The hub at ${context.endpoint.url} is failing: try again later, or use a mirror (${MODEL_ENV.hubEndpoint}).`,
        });
      }
      delayMs = asked ?? backoff(context.retry, attempt);
    } catch (error) {
      open.release();
      if (context.signal?.aborted) throw context.signal.reason;
      if (VqaLlmError.isInstance(error)) throw error;
      const cause = (error as Error & { cause?: Error }).cause;
      lastProblem = open.stalled() ? `no answer for ${Math.round(context.stallTimeoutMs / 1000)} s` : (cause?.message ?? (error as Error).message);
      if (attempt >= attempts) {
        throw new ModelDownloadError('network', `Could not reach ${url} (${attempts} attempts): ${lastProblem}.`, {
          hint: `Check the network and the hub address (${context.endpoint.url}, from ${context.endpoint.setting}; ${MODEL_ENV.hubEndpoint} sets a mirror); set ${MODEL_ENV.offline}=1 (--offline) to use cached models only.`,
          cause: error,
        });
      }
      delayMs = backoff(context.retry, attempt);
    }
    await sleep(delayMs, context.signal);
  }
}

/** Exponential back-off: minDelayMs, then twice that, ..., at most maxDelayMs. */
export function backoff(retry: Required<HubRetryOptions>, attempt: number): number {
  return Math.min(retry.maxDelayMs, retry.minDelayMs * 2 ** (attempt - 1));
}

/** `Retry-After` in ms: delta seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** Sleeps, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** One attempt's own abort signal: the caller's, plus a timer that fires when nothing arrives for a while. */
function watch(context: HubRequestContext) {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let stalled = false;
  const onAbort = () => controller.abort(context.signal!.reason);
  context.signal?.addEventListener('abort', onAbort, { once: true });
  const alive = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      controller.abort(new StallTimeout('stalled'));
    }, context.stallTimeoutMs);
    timer.unref?.();
  };
  const release = () => {
    clearTimeout(timer);
    context.signal?.removeEventListener('abort', onAbort);
  };
  alive();
  return { signal: controller.signal, alive, release, stalled: () => stalled };
}
