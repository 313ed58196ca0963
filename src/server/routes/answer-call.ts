// The work both OpenAI routes share once a request is parsed: the cheap checks before a slot is taken (question,
// image bytes, image header), the queue, the deadline, and the chain run whole or streamed.
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import type { VqaInput, VqaResult, VqaStreamChunk } from '../../../chains/types.js';
import { validateQuestion } from '../../question.js';
import { toApiError } from '../api-error.js';
import type { Conversation } from '../conversation.js';
import { checkImageHeader } from '../image-guard.js';
import { readImageSource } from '../image-source.js';
import type { ServerContext } from '../server-context.js';
import { acquireSlot, requestScope, workError, type RequestScope } from './request-scope.js';

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
    await checkImageHeader(image, { maxPixels: settings.maxImagePixels, maxAspectRatio: settings.maxImageAspectRatio, maxFrames: settings.maxImageFrames });
  } catch (error) {
    throw toApiError(error, request.imageParam);
  }
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

/** Waits for a slot and answers whole. */
export async function answerWhole(context: ServerContext, call: AnswerCall): Promise<VqaResult> {
  const done = await acquireSlot(context, call.scope);
  try {
    const result = await context.chain.invoke(call.input, { signal: call.scope.signal });
    observe(context, call, result);
    return result;
  } catch (error) {
    throw workError(error, context, call.scope, call.imageParam);
  } finally {
    done();
  }
}

/**
 * Waits for a slot and starts the stream. The first chunk (vision) is awaited here, so that image and question errors
 * still get a 4xx before any header is sent. The returned chunks hold the slot until they end, the consumer stops, or
 * the response closes, whichever comes first.
 */
export async function answerStream(context: ServerContext, call: AnswerCall, reply: FastifyReply): Promise<AsyncGenerator<VqaStreamChunk>> {
  const done = await acquireSlot(context, call.scope);
  // A generator that is never started skips its `finally`; the response's end releases the slot in any case.
  reply.raw.once('close', done);
  let iterator: AsyncIterator<VqaStreamChunk> | undefined;
  let first: IteratorResult<VqaStreamChunk>;
  try {
    iterator = (await context.chain.stream(call.input, { signal: call.scope.signal }))[Symbol.asyncIterator]();
    first = await iterator.next();
  } catch (error) {
    done();
    await iterator?.return?.().catch(() => undefined);
    throw workError(error, context, call.scope, call.imageParam);
  }
  const started = iterator;
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
