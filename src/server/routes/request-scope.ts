import type { FastifyReply } from 'fastify';
import { ApiError, toApiError } from '../api-error.js';
import { checkImageHeader } from '../image-guard.js';
import { QueueFullError } from '../request-queue.js';
import { serverBusy, shuttingDown, type ServerContext } from '../server-context.js';

/**
 * The signals of one request: `signal` stops its work for any reason, `deadline` says its time ran out, `shutdown`
 * that the server's grace period ended.
 */
export interface RequestScope {
  signal: AbortSignal;
  deadline: AbortSignal;
  shutdown: AbortSignal;
}

/**
 * A request's scope: aborted when the client hangs up or `requestTimeoutMs` after arrival, whichever comes first.
 * Plain controllers and a timer cleared when the response closes, rather than AbortSignal.any over
 * AbortSignal.timeout: a composite signal with listeners (LangChain leaves its own) stays reachable until a source
 * aborts, so at a few hundred requests a second those pile up for the whole deadline and beyond.
 */
export function requestScope(reply: FastifyReply, context: ServerContext): RequestScope {
  const { requestTimeoutMs } = context.settings;
  const work = new AbortController();
  const deadline = new AbortController();
  const shutdown = new AbortController();
  const timer = setTimeout(() => {
    const reason = new DOMException(`The request passed its deadline of ${requestTimeoutMs} ms.`, 'TimeoutError');
    deadline.abort(reason);
    work.abort(reason);
  }, requestTimeoutMs);
  const closed = new Promise<void>((resolve) => {
    // The response's `close` is the reliable end: the request's fires once its body has been read.
    reply.raw.once('close', () => {
      clearTimeout(timer);
      context.inFlight.delete(stop);
      if (!reply.raw.writableFinished) work.abort(new DOMException('The client closed the connection.', 'AbortError'));
      resolve();
    });
  });
  const stop = (): Promise<void> => {
    const reason = new DOMException('The server is shutting down.', 'AbortError');
    shutdown.abort(reason);
    work.abort(reason);
    return closed;
  };
  context.inFlight.add(stop);
  return { signal: work.signal, deadline: deadline.signal, shutdown: shutdown.signal };
}

/**
 * Waits for a slot in the request queue. A full queue is a 503 with Retry-After at once; a deadline that passes while
 * waiting drops the request from the queue (it never runs) and answers 503 too, since another instance may do better.
 */
export async function acquireSlot(context: ServerContext, scope: RequestScope): Promise<() => void> {
  try {
    return await context.queue.acquire(scope.signal);
  } catch (error) {
    if (error instanceof QueueFullError) throw serverBusy(context.settings, error);
    if (scope.shutdown.aborted) throw shuttingDown(context.settings, error);
    if (scope.deadline.aborted) {
      throw new ApiError(503, 'queue_timeout', `The request waited in the queue past its deadline (${context.settings.requestTimeoutMs} ms) and was dropped unanswered.`, {
        retryAfterSeconds: context.settings.retryAfterSeconds,
        cause: error,
      });
    }
    throw toApiError(error);
  }
}

/**
 * Checks an image's header in one of the header-check slots (as many as the model slots, with a waiting line of
 * the queue's size): sharp reads headers on the same thread pool as decodes, so unbounded checks of hostile files
 * would delay admitted work. A full line is a 503, like a full queue.
 */
export async function checkImage(context: ServerContext, scope: RequestScope, bytes: Uint8Array, param: string): Promise<void> {
  const { settings } = context;
  const limits = { maxPixels: settings.maxImagePixels, maxAspectRatio: settings.maxImageAspectRatio, maxFrames: settings.maxImageFrames, maxJpegScans: settings.maxJpegScans };
  try {
    await context.headerChecks.run(() => checkImageHeader(bytes, limits), scope.signal);
  } catch (error) {
    if (error instanceof QueueFullError) throw serverBusy(settings, error);
    if (scope.signal.aborted) throw workError(error, context, scope, param);
    throw toApiError(error, param);
  }
}

/** Maps a failure of the work itself: past the deadline it is a 504, whatever the aborted step threw. */
export function workError(error: unknown, context: ServerContext, scope: RequestScope, param?: string): ApiError {
  if (error instanceof ApiError) return error;
  if (scope.shutdown.aborted) return shuttingDown(context.settings, error);
  if (scope.deadline.aborted) {
    return new ApiError(504, 'deadline_exceeded', `The answer took longer than the request deadline (${context.settings.requestTimeoutMs} ms); the work was stopped.`, { cause: error });
  }
  return toApiError(error, param);
}
