// POST /v1/responses: the subset of OpenAI's Responses API that the openai SDK, the AI SDK (its default for
// `openai(model)`) and LangChain's `useResponsesApi` send, answered by the same pipeline as chat completions.
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { VqaResult, VqaStreamChunk } from '../../../chains/types.js';
import { formatAnswer } from '../answer-format.js';
import { toApiError } from '../api-error.js';
import { parseResponsesRequest, type ResponsesRequest } from '../responses-request.js';
import type { ServerContext } from '../server-context.js';
import { responsesUsage } from '../token-usage.js';
import { answerStream, answerWhole, correction, prepareAnswerCall, RESULT_FIELD } from './answer-call.js';
import type { RequestScope } from './request-scope.js';

interface ResponseIds {
  id: string;
  messageId: string;
  createdAt: number;
  model: string;
}

function newIds(model: string): ResponseIds {
  const hex = (): string => randomUUID().replaceAll('-', '');
  return { id: `resp_${hex()}`, messageId: `msg_${hex()}`, createdAt: Math.floor(Date.now() / 1000), model };
}

function outputText(text: string): Record<string, unknown> {
  return { type: 'output_text', text, annotations: [], logprobs: [] };
}

function message(ids: ResponseIds, text: string | undefined): Record<string, unknown> {
  return { id: ids.messageId, type: 'message', role: 'assistant', status: text === undefined ? 'in_progress' : 'completed', content: text === undefined ? [] : [outputText(text)] };
}

/**
 * The response object: the fields OpenAI's own carries, with what this server did rather than echoes of what it
 * ignored (no tools, nothing stored, sampling left to the server's LLM).
 */
function responseObject(ids: ResponseIds, request: ResponsesRequest, state: { status: 'in_progress' | 'completed' | 'failed'; text?: string; result?: VqaResult; error?: { code: string; message: string } }): Record<string, unknown> {
  const done = state.status === 'completed';
  return {
    id: ids.id,
    object: 'response',
    created_at: ids.createdAt,
    status: state.status,
    ...(done ? { completed_at: Math.floor(Date.now() / 1000) } : {}),
    background: false,
    error: state.error ?? null,
    incomplete_details: null,
    instructions: request.instructions,
    max_output_tokens: null,
    metadata: request.metadata ?? {},
    model: ids.model,
    output: done ? [message(ids, state.text ?? '')] : [],
    ...(done ? { output_text: state.text ?? '' } : {}),
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: null,
    text: { format: request.textFormat },
    tool_choice: 'none',
    tools: [],
    top_p: null,
    truncation: 'disabled',
    usage: state.result ? responsesUsage(state.result) : null,
    ...(state.result ? { [RESULT_FIELD]: state.result } : {}),
  };
}

async function* responseEvents(ids: ResponseIds, request: ResponsesRequest, chunks: AsyncGenerator<VqaStreamChunk>, log: FastifyBaseLogger, scope: RequestScope): AsyncGenerator<string> {
  let sequence = 0;
  const event = (type: string, fields: Record<string, unknown>): string => `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: sequence++, ...fields })}\n\n`;
  const at = { item_id: ids.messageId, output_index: 0, content_index: 0 };
  // JSON is sent whole once the result is known: the streamed sentence is not part of it.
  const streamsSentence = request.format.type === 'text';
  let streamed = '';
  try {
    for await (const chunk of chunks) {
      if (chunk.type === 'vision') {
        yield event('response.created', { response: responseObject(ids, request, { status: 'in_progress' }) });
        // Caption and candidates arrive before the answer: a page can show them while the LLM writes.
        yield event('response.in_progress', { response: responseObject(ids, request, { status: 'in_progress' }), [RESULT_FIELD]: { type: 'vision', caption: chunk.caption, candidates: chunk.candidates } });
        yield event('response.output_item.added', { output_index: 0, item: message(ids, undefined) });
        yield event('response.content_part.added', { ...at, part: outputText('') });
      } else if (chunk.type === 'answer-delta') {
        if (!streamsSentence) continue;
        streamed += chunk.text;
        yield event('response.output_text.delta', { ...at, delta: chunk.text, logprobs: [] });
      } else {
        const { result } = chunk;
        // As in chat completions, the deltas are provisional; the text is what the client has printed, which ends in
        // the final answer, and `vqa_llm` says which answer is authoritative.
        const rest = correction(streamed, formatAnswer(result, request.format));
        if (rest) yield event('response.output_text.delta', { ...at, delta: rest, logprobs: [] });
        const text = streamed + rest;
        yield event('response.output_text.done', { ...at, text, logprobs: [] });
        yield event('response.content_part.done', { ...at, part: outputText(text) });
        yield event('response.output_item.done', { output_index: 0, item: message(ids, text) });
        yield event('response.completed', { response: responseObject(ids, request, { status: 'completed', text, result }) });
      }
    }
  } catch (error) {
    // A client that hung up reads nothing more; one whose deadline passed is told why its stream ends.
    if (scope.signal.aborted && !scope.deadline.aborted && !scope.shutdown.aborted) return;
    if (scope.signal.aborted) log.warn({ reason: scope.shutdown.aborted ? 'shutting_down' : 'deadline_exceeded' }, 'stream stopped');
    else log.error({ err: error }, 'stream failed after it started');
    const apiError = toApiError(error);
    yield event('error', { code: apiError.code, message: apiError.message, param: apiError.param });
    yield event('response.failed', { response: responseObject(ids, request, { status: 'failed', error: { code: apiError.code, message: apiError.message } }) });
  }
}

export function registerResponsesRoute(app: FastifyInstance, context: ServerContext): void {
  app.post('/v1/responses', async (request, reply) => {
    const parsed = parseResponsesRequest(request.body, context.settings);
    const call = await prepareAnswerCall(context, reply, request.log, parsed);
    const ids = newIds(context.settings.modelName);
    if (!parsed.stream) {
      const result = await answerWhole(context, call);
      return responseObject(ids, parsed, { status: 'completed', text: formatAnswer(result, parsed.format), result });
    }
    const chunks = await answerStream(context, call, reply);
    reply.header('content-type', 'text/event-stream; charset=utf-8').header('cache-control', 'no-cache').header('x-accel-buffering', 'no');
    return reply.send(Readable.from(responseEvents(ids, parsed, chunks, request.log, call.scope), { objectMode: false }));
  });
}
