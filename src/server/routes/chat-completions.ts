import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { VqaResult, VqaStreamChunk } from '../../../chains/types.js';
import { formatAnswer } from '../answer-format.js';
import { toApiError } from '../api-error.js';
import { parseChatRequest, type ChatRequest } from '../chat-request.js';
import type { ServerContext } from '../server-context.js';
import { chatUsage } from '../token-usage.js';
import { answerStream, answerWhole, correction, prepareAnswerCall, RESULT_FIELD } from './answer-call.js';
import type { RequestScope } from './request-scope.js';

export { correction, RESULT_FIELD };

interface CompletionIds {
  id: string;
  created: number;
  model: string;
}

function completionBody(ids: CompletionIds, result: VqaResult, request: ChatRequest): Record<string, unknown> {
  return {
    id: ids.id,
    object: 'chat.completion',
    created: ids.created,
    model: ids.model,
    choices: [{ index: 0, message: { role: 'assistant', content: formatAnswer(result, request.format), refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: chatUsage(result),
    system_fingerprint: null,
    [RESULT_FIELD]: result,
  };
}

function event(chunk: Record<string, unknown>): string {
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

async function* sseEvents(ids: CompletionIds, request: ChatRequest, chunks: AsyncGenerator<VqaStreamChunk>, log: FastifyBaseLogger, scope: RequestScope): AsyncGenerator<string> {
  // With include_usage every chunk says `usage: null` and one more, without choices, carries the counts.
  const usageField = request.includeUsage ? { usage: null } : {};
  const chunkEvent = (delta: Record<string, unknown>, finishReason: string | null, extra: Record<string, unknown> = {}): string =>
    event({ id: ids.id, object: 'chat.completion.chunk', created: ids.created, model: ids.model, system_fingerprint: null, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }], ...usageField, ...extra });
  // JSON is sent whole once the result is known: the streamed sentence is not part of it.
  const streamsSentence = request.format.type === 'text';
  let streamed = '';
  try {
    for await (const chunk of chunks) {
      if (chunk.type === 'vision') {
        // Caption and candidates arrive before the answer: a page can show them while the LLM writes.
        yield chunkEvent({ role: 'assistant', content: '' }, null, { [RESULT_FIELD]: { type: 'vision', caption: chunk.caption, candidates: chunk.candidates } });
      } else if (chunk.type === 'answer-delta') {
        if (!streamsSentence) continue;
        streamed += chunk.text;
        yield chunkEvent({ content: chunk.text }, null);
      } else {
        const { result } = chunk;
        const rest = correction(streamed, formatAnswer(result, request.format));
        if (rest) yield chunkEvent({ content: rest }, null);
        yield chunkEvent({}, 'stop', { [RESULT_FIELD]: { type: 'result', ...result } });
        if (request.includeUsage) {
          yield event({ id: ids.id, object: 'chat.completion.chunk', created: ids.created, model: ids.model, system_fingerprint: null, choices: [], usage: chatUsage(result) });
        }
      }
    }
    yield 'data: [DONE]\n\n';
  } catch (error) {
    // A client that hung up reads nothing more; one whose deadline passed is told why its stream ends.
    if (scope.signal.aborted && !scope.deadline.aborted && !scope.shutdown.aborted) return;
    if (scope.signal.aborted) log.warn({ reason: scope.shutdown.aborted ? 'shutting_down' : 'deadline_exceeded' }, 'stream stopped');
    else log.error({ err: error }, 'stream failed after it started');
    // Headers are gone already; OpenAI's clients raise an `error` event as an APIError.
    yield event(toApiError(error).toBody() as unknown as Record<string, unknown>);
  }
}

export function registerChatCompletionsRoute(app: FastifyInstance, context: ServerContext): void {
  app.post('/v1/chat/completions', async (request, reply) => {
    const parsed = parseChatRequest(request.body, context.settings);
    const call = await prepareAnswerCall(context, reply, request.log, parsed);
    const ids: CompletionIds = { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: context.settings.modelName };
    if (!parsed.stream) return completionBody(ids, await answerWhole(context, call), parsed);

    const chunks = await answerStream(context, call, reply);
    reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
    return reply.send(Readable.from(sseEvents(ids, parsed, chunks, request.log, call.scope), { objectMode: false }));
  });
}
