import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { VqaInput, VqaResult, VqaStreamChunk } from '../../../chains/types.js';
import { validateQuestion } from '../../question.js';
import { toApiError } from '../api-error.js';
import { parseChatRequest } from '../chat-request.js';
import { checkImageHeader } from '../image-guard.js';
import { readImageSource } from '../image-source.js';
import type { ServerContext } from '../vqa-server.js';
import { acquireSlot, requestScope, workError } from './request-scope.js';

/** The extra field that carries the pipeline's full result; standard clients ignore fields they do not know. */
export const RESULT_FIELD = 'vqa_llm';

interface CompletionIds {
  id: string;
  created: number;
  model: string;
}

function completionBody(ids: CompletionIds, result: VqaResult): Record<string, unknown> {
  return {
    id: ids.id,
    object: 'chat.completion',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, message: { role: 'assistant', content: result.answer, refusal: null }, finish_reason: 'stop', logprobs: null }],
    system_fingerprint: null,
    [RESULT_FIELD]: result,
  };
}

function chunkEvent(ids: CompletionIds, delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}): string {
  const chunk = { id: ids.id, object: 'chat.completion.chunk', created: ids.created, model: ids.model, system_fingerprint: null, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }], ...extra };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/**
 * The text that makes what a client has printed equal the final answer. Deltas are provisional: when the LLM's
 * reply breaks off or turns out unusable, the result falls back to the VQA answer, and a plain OpenAI client can
 * only append. The result field says which answer is authoritative.
 */
export function correction(streamed: string, answer: string): string {
  if (answer === streamed) return '';
  if (answer.startsWith(streamed)) return answer.slice(streamed.length);
  return streamed ? `\n\n${answer}` : answer;
}

function logResult(log: FastifyBaseLogger, result: VqaResult, imageBytes: number): void {
  log.info(
    { source: result.source, fallback: result.fallbackReason?.code, cached: result.cached, totalMs: Math.round(result.timings.total), imageBytes, candidates: result.candidates.length },
    'answered',
  );
}

async function* sseEvents(
  ids: CompletionIds,
  first: IteratorResult<VqaStreamChunk>,
  iterator: AsyncIterator<VqaStreamChunk>,
  done: () => void,
  context: ServerContext,
  log: FastifyBaseLogger,
  imageBytes: number,
  signal: AbortSignal,
): AsyncGenerator<string> {
  let streamed = '';
  try {
    for (let step = first; !step.done; step = await iterator.next()) {
      const chunk = step.value;
      if (chunk.type === 'vision') {
        // Caption and candidates arrive before the answer: a page can show them while the LLM writes.
        yield chunkEvent(ids, { role: 'assistant', content: '' }, null, { [RESULT_FIELD]: { type: 'vision', caption: chunk.caption, candidates: chunk.candidates } });
      } else if (chunk.type === 'answer-delta') {
        streamed += chunk.text;
        yield chunkEvent(ids, { content: chunk.text }, null);
      } else {
        const { result } = chunk;
        context.metrics.observeResult(result);
        logResult(log, result, imageBytes);
        const rest = correction(streamed, result.answer);
        if (rest) yield chunkEvent(ids, { content: rest }, null);
        yield chunkEvent(ids, {}, 'stop', { [RESULT_FIELD]: { type: 'result', ...result } });
      }
    }
    yield 'data: [DONE]\n\n';
  } catch (error) {
    if (signal.aborted) return;
    const apiError = toApiError(error);
    log.error({ err: error }, 'stream failed after it started');
    // Headers are gone already; OpenAI's clients raise an `error` event as an APIError.
    yield `data: ${JSON.stringify(apiError.toBody())}\n\n`;
  } finally {
    done();
    await iterator.return?.();
  }
}

export function registerChatCompletionsRoute(app: FastifyInstance, context: ServerContext): void {
  const { settings } = context;
  app.post('/v1/chat/completions', async (request, reply) => {
    const parsed = parseChatRequest(request.body, settings);
    // Everything cheap is checked before the request takes a slot: the question, then the image's header.
    validateQuestion(parsed.question, { maxLength: settings.maxQuestionLength });
    const scope = requestScope(reply, context);
    const { signal } = scope;
    let image: Uint8Array;
    try {
      image = await readImageSource(parsed.imageUrl, { ...settings, signal, param: parsed.imageParam });
      await checkImageHeader(image, { maxPixels: settings.maxImagePixels, maxAspectRatio: settings.maxImageAspectRatio, maxFrames: settings.maxImageFrames });
    } catch (error) {
      throw toApiError(error, parsed.imageParam);
    }
    const input: VqaInput = { image, question: parsed.question, history: parsed.history, ...(parsed.topK ? { topK: parsed.topK } : {}) };
    const ids: CompletionIds = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: settings.modelName };

    const done = await acquireSlot(context, scope);
    if (!parsed.stream) {
      try {
        const result = await context.chain.invoke(input, { signal });
        context.metrics.observeResult(result);
        logResult(request.log, result, image.byteLength);
        return completionBody(ids, result);
      } catch (error) {
        throw workError(error, context, scope, parsed.imageParam);
      } finally {
        done();
      }
    }

    let iterator: AsyncIterator<VqaStreamChunk> | undefined;
    let first: IteratorResult<VqaStreamChunk>;
    try {
      iterator = (await context.chain.stream(input, { signal }))[Symbol.asyncIterator]();
      // Image and question errors surface with the vision step, before any header: they still get a 4xx.
      first = await iterator.next();
    } catch (error) {
      done();
      await iterator?.return?.().catch(() => undefined);
      throw workError(error, context, scope, parsed.imageParam);
    }
    reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
    return reply.send(Readable.from(sseEvents(ids, first, iterator, done, context, request.log, image.byteLength, signal), { objectMode: false }));
  });
}
