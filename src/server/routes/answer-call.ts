// The work both OpenAI routes share once a request is parsed: the cheap checks before a slot is taken (question,
// image bytes, image header), the queue, the deadline, and the chain run whole or streamed.
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { VqaInput, VqaResult, VqaStreamChunk } from '../../../chains/types.js';
import { validateQuestion } from '../../question.js';
import { toApiError } from '../api-error.js';
import type { Conversation } from '../conversation.js';
import { readImageSource } from '../image-source.js';
import { runWithUncancellableWork } from '../../image/uncancellable-work.js';
import type { ServerContext } from '../server-context.js';
import { acquireSlot, checkImage, requestScope, workError, type RequestScope } from './request-scope.js';

/** The extra field that carries the pipeline's full result; standard clients ignore fields they do not know. */
export const RESULT_FIELD = 'vqa_llm';

/** A request that passed every check that costs no model work, with its scope started. */
export interface AnswerCall {
  input: VqaInput;
  scope: RequestScope;
  imageParam: string;
  imageBytes: number;
  log: FastifyBaseLogger;
}

/**
 * Everything cheap is checked before the request takes a slot: the question, then the image's bytes and header.
 * The request's deadline starts here, so an image download counts against it.
 */
export async function prepareAnswerCall(
  context: ServerContext,
  reply: FastifyReply,
  log: FastifyBaseLogger,
  request: Conversation & { topK?: number },
): Promise<AnswerCall> {
  const { settings } = context;
  validateQuestion(request.question, { maxLength: settings.maxQuestionLength });
  const scope = requestScope(reply, context);
  let image: Uint8Array;
  try {
    image = await readImageSource(request.imageUrl, { ...settings, signal: scope.signal, param: request.imageParam });
  } catch (error) {
    throw toApiError(error, request.imageParam);
  }
  await checkImage(context, scope, image, request.imageParam);
  const input: VqaInput = { image, question: request.question, history: request.history, ...(request.topK ? { topK: request.topK } : {}) };
  return { input, scope, imageParam: request.imageParam, imageBytes: image.byteLength, log };
}

function observe(context: ServerContext, call: AnswerCall, result: VqaResult): void {
  context.metrics.observeResult(result);
  call.log.info(
    {
      source: result.source,
      fallback: result.fallbackReason?.code,
      cached: result.cached,
      totalMs: Math.round(result.timings.total),
      imageBytes: call.imageBytes,
      candidates: result.candidates.length,
      ...(result.usage ? { tokens: result.usage.totalTokens } : {}),
    },
    'answered',
  );
}

/** How long a stream stopped by its deadline (or the server's shutdown) may take to send its last event. */
const STREAM_END_GRACE_MS = 1_000;

/**
 * A stream's deadline ends the response whatever the client does: the slot is freed at once (the signal has stopped
 * the work), and a client that stopped reading, so that the closing error event cannot reach it, is cut off shortly
 * after instead of holding the connection until it hangs up.
 */
function endStreamWhenStopped(scope: AnswerCall['scope'], reply: FastifyReply, done: () => void): void {
  const stop = (): void => {
    done();
    if (reply.raw.writableEnded) return;
    const timer = setTimeout(() => reply.raw.destroy(), STREAM_END_GRACE_MS);
    reply.raw.once('close', () => clearTimeout(timer));
  };
  const onAbort = (): void => {
    if (scope.deadline.aborted || scope.shutdown.aborted) stop();
  };
  scope.signal.addEventListener('abort', onAbort, { once: true });
  reply.raw.once('close', () => scope.signal.removeEventListener('abort', onAbort));
}

/** Waits for a slot and answers whole. */
export async function answerWhole(context: ServerContext, call: AnswerCall): Promise<VqaResult> {
  const done = await acquireSlot(context, call.scope);
  const { result, work } = runWithUncancellableWork(() => context.chain.invoke(call.input, { signal: call.scope.signal }));
  try {
    const answered = await result;
    observe(context, call, answered);
    return answered;
  } catch (error) {
    throw workError(error, context, call.scope, call.imageParam);
  } finally {
    // The answer (or the 504) goes out now; the slot stays taken until a decode the deadline could not stop ends.
    void work.settled().then(done);
  }
}

/**
 * Waits for a slot and starts the stream. The first chunk (vision) is awaited here, so that image and question errors
 * still get a 4xx before any header is sent. The returned chunks hold the slot until they end, the consumer stops, or
 * the response closes, whichever comes first.
 */
export async function answerStream(context: ServerContext, call: AnswerCall, reply: FastifyReply): Promise<AsyncGenerator<VqaStreamChunk>> {
  const acquired = await acquireSlot(context, call.scope);
  let iterator: AsyncIterator<VqaStreamChunk> | undefined;
  let first: IteratorResult<VqaStreamChunk>;
  // The vision work (decode, graphs) runs before the first chunk: the slot is held until what it started has ended.
  const { result, work } = runWithUncancellableWork(async () => {
    iterator = (await context.chain.stream(call.input, { signal: call.scope.signal }))[Symbol.asyncIterator]();
    return iterator.next();
  });
  let released = false;
  const done = (): void => {
    if (released) return;
    released = true;
    void work.settled().then(acquired);
  };
  // A generator that is never started skips its `finally`; the response's end releases the slot in any case.
  reply.raw.once('close', done);
  endStreamWhenStopped(call.scope, reply, done);
  try {
    first = await result;
  } catch (error) {
    done();
    await iterator?.return?.().catch(() => undefined);
    throw workError(error, context, call.scope, call.imageParam);
  }
  // Set whenever the first chunk arrived: the stream was created before it.
  const started = iterator as AsyncIterator<VqaStreamChunk>;
  return (async function* chunks(): AsyncGenerator<VqaStreamChunk> {
    try {
      for (let step = first; !step.done; step = await started.next()) {
        if (step.value.type === 'result') observe(context, call, step.value.result);
        yield step.value;
      }
    } catch (error) {
      throw workError(error, context, call.scope, call.imageParam);
    } finally {
      done();
      await started.return?.();
    }
  })();
}

/** Re-exported for the routes and their tests. */
export { streamCorrection as correction } from '../../conversation/stream-correction.js';
