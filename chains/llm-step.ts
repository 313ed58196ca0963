import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { Runnable, RunnableConfig } from '@langchain/core/runnables';
import { VqaAnswerSchema, type VqaAnswer } from '../prompts/vqa-answer.js';
import { VQA_PROMPT_DELIMITERS } from '../prompts/vqa-v1.js';
import type { CircuitBreaker } from '../src/llm/circuit-breaker.js';
import { isRetryableLlmError, retryDelayMs, type RetryBackoff } from '../src/llm/retry-policy.js';
import { VQA_CHAIN_DEFAULTS } from './defaults.js';
import { classifyLlmError, LlmDeadlineError } from './fallback.js';
import { AnswerFieldScanner, MAX_REPLY_CHARS, parseAnswerReply } from './parse-answer.js';
import type { FallbackReason, LlmUsage, StructuredOutputMode } from './types.js';

/** The step's answer or the reason to fall back; `usage` when the LLM reported token counts, either way. */
export type LlmOutcome = ({ ok: true; value: VqaAnswer } | { ok: false; reason: FallbackReason }) & { usage?: LlmUsage };

/** What the step reads from each streamed chunk (an AIMessageChunk). */
interface LlmChunk {
  text: string;
  usage_metadata?: { input_tokens?: number; output_tokens?: number; total_tokens?: number };
}

export interface LlmStepOptions {
  llm: BaseChatModel;
  structuredOutput: StructuredOutputMode;
  timeoutMs: number;
  retries: number;
  /** The caller's RunnableConfig: its signal and callbacks reach the model. */
  config: RunnableConfig;
  /** When set, an open circuit answers with `llm_circuit_open` at once, and each call's outcome is reported to it. */
  breaker?: CircuitBreaker;
  /** Backoff between retries (jittered, never shorter than the endpoint's retry-after). */
  backoff?: RetryBackoff;
}

// Failures that say the endpoint is unwell; a malformed or unusable reply came from a working endpoint.
const ENDPOINT_FAILURES = new Set(['llm_timeout', 'llm_rate_limited', 'llm_connection_error', 'llm_stream_interrupted', 'llm_error']);

function isEndpointFailure(outcome: LlmOutcome): boolean {
  if (outcome.ok) return false;
  const { code, status } = outcome.reason;
  return ENDPOINT_FAILURES.has(code) || (code === 'llm_http_error' && (status === undefined || status >= 500));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The mode used when the chain's options do not say: JSON schemas where the model speaks OpenAI's API, or where the
 * model says it prefers one (`preferredStructuredOutput`: the embedded LLM constrains its reply with a grammar).
 */
export function defaultStructuredOutput(llm: BaseChatModel): StructuredOutputMode {
  const preferred = (llm as { preferredStructuredOutput?: unknown }).preferredStructuredOutput;
  if (preferred === 'json-schema' || preferred === 'json-object' || preferred === 'prompt') return preferred;
  return llm._llmType() === 'openai' ? 'json-schema' : 'prompt';
}

/** A readable name for `models.llm`: the model name where the class has one, else its type. */
export function describeLlm(llm: BaseChatModel): string {
  const model = (llm as unknown as { model?: unknown }).model;
  return typeof model === 'string' && model !== '' ? model : llm._llmType();
}

// withStructuredOutput() would send the same response_format, but it hides the raw text that the tolerant parser
// and the streamed sentence need, and on OpenAI's non-streaming path it throws on any reply that is not pure JSON
// (servers that ignore response_format send prose). So the request is bound here and the reply parsed below.
// A model that constrains its reply with a grammar (it says so with preferredStructuredOutput, as the embedded LLM
// does) also gets the lengths the answer check allows, so that even a weak model's reply is usable by construction.
// Endpoints get the schema unchanged: not every server accepts length keywords in strict mode.
function answerSchema(llm: BaseChatModel): object {
  if ((llm as { preferredStructuredOutput?: unknown }).preferredStructuredOutput === undefined) return VqaAnswerSchema;
  // A grammar counts characters (code points); the answer check counts UTF-16 units, two for a character beyond
  // the BMP (an emoji): half the check's length fits whatever the characters.
  const text = (checkedLength: number) => ({ type: 'string', minLength: 1, maxLength: Math.floor(checkedLength / 2) });
  return {
    type: 'object',
    description: VqaAnswerSchema.description,
    properties: { shortAnswer: text(VQA_CHAIN_DEFAULTS.maxShortAnswerLength), answer: text(VQA_CHAIN_DEFAULTS.maxAnswerLength) },
    required: ['shortAnswer', 'answer'],
    additionalProperties: false,
  };
}

function withResponseFormat(llm: BaseChatModel, mode: StructuredOutputMode): Runnable<BaseMessage[], LlmChunk> {
  if (mode === 'prompt') return llm;
  const responseFormat =
    mode === 'json-object'
      ? { type: 'json_object' }
      : { type: 'json_schema', json_schema: { name: 'vqa_answer', description: VqaAnswerSchema.description, schema: answerSchema(llm), strict: true } };
  return llm.withConfig({ response_format: responseFormat } as Partial<RunnableConfig>) as Runnable<BaseMessage[], LlmChunk>;
}

function collapse(text: string): string {
  return text.replace(/\s+/gu, ' ').trim();
}

// A reply can be valid JSON and still not be something to show a person.
function checkUsable(value: VqaAnswer): LlmOutcome {
  const shortAnswer = collapse(value.shortAnswer);
  const answer = collapse(value.answer);
  const unusable = (message: string): LlmOutcome => ({ ok: false, reason: { code: 'llm_unusable', message } });
  if (shortAnswer === '' || answer === '') return unusable('The LLM returned an empty shortAnswer or answer.');
  if (shortAnswer.length > VQA_CHAIN_DEFAULTS.maxShortAnswerLength) {
    return unusable(`The LLM's shortAnswer is ${shortAnswer.length} characters long; at most ${VQA_CHAIN_DEFAULTS.maxShortAnswerLength} are shown.`);
  }
  if (answer.length > VQA_CHAIN_DEFAULTS.maxAnswerLength) {
    return unusable(`The LLM's answer is ${answer.length} characters long; at most ${VQA_CHAIN_DEFAULTS.maxAnswerLength} are shown.`);
  }
  const lower = `${shortAnswer} ${answer}`.toLowerCase();
  if (VQA_PROMPT_DELIMITERS.some((delimiter) => lower.includes(delimiter)) || lower.includes('you answer questions about a photo that you cannot see')) {
    return unusable('The LLM echoed the prompt instead of answering.');
  }
  return { ok: true, value: { shortAnswer, answer } };
}

function tokens(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

// Providers split usage differently (OpenAI: one last chunk; Anthropic: input first, output last), so every chunk's
// counts are added, as LangChain's own chunk concatenation does.
function addUsage(total: LlmUsage | undefined, reported: LlmChunk['usage_metadata']): LlmUsage | undefined {
  if (!reported) return total;
  const inputTokens = tokens(reported.input_tokens);
  const outputTokens = tokens(reported.output_tokens);
  const totalTokens = tokens(reported.total_tokens) || inputTokens + outputTokens;
  return {
    inputTokens: (total?.inputTokens ?? 0) + inputTokens,
    outputTokens: (total?.outputTokens ?? 0) + outputTokens,
    totalTokens: (total?.totalTokens ?? 0) + totalTokens,
  };
}

/**
 * Asks the LLM and yields the `answer` field's text as it streams in; returns the checked answer or the reason to
 * fall back. It throws only when the caller's own signal aborted: then the whole chain stops, as any Runnable does.
 * With a circuit breaker, an open circuit costs no request at all: the step falls back with `llm_circuit_open`.
 */
export async function* runLlmStep(messages: BaseMessage[], options: LlmStepOptions): AsyncGenerator<string, LlmOutcome> {
  const permit = options.breaker?.tryAcquire();
  if (options.breaker && !permit) {
    const seconds = Math.ceil(options.breaker.retryInMs() / 1000);
    return { ok: false, reason: { code: 'llm_circuit_open', message: `The LLM endpoint failed repeatedly; its circuit is open${seconds > 0 ? ` for about ${seconds} s more` : ''}, so it was not called.` } };
  }
  let outcome: LlmOutcome | undefined;
  try {
    outcome = yield* runWithRetries(messages, options);
    return outcome;
  } finally {
    // No outcome means the caller aborted or stopped reading: that says nothing about the endpoint.
    permit?.release(outcome === undefined ? 'ignored' : isEndpointFailure(outcome) ? 'failure' : 'success');
  }
}

async function* runWithRetries(messages: BaseMessage[], options: LlmStepOptions): AsyncGenerator<string, LlmOutcome> {
  let usage: LlmUsage | undefined;
  const withUsage = (outcome: LlmOutcome): LlmOutcome => (usage ? { ...outcome, usage } : outcome);
  const deadline = new AbortController();
  const startedAt = Date.now();
  const callerSignal = options.config.signal;
  // One plain controller for the model, fed by the deadline and the caller, rather than AbortSignal.any: the OpenAI
  // SDK never removes its abort listener, and Node keeps a composite signal with listeners alive until a source
  // aborts, so every answered call would leave one behind for good.
  const model = new AbortController();
  const signal = model.signal;
  const onCallerAbort = (): void => model.abort(callerSignal?.reason);
  const timer = setTimeout(() => {
    deadline.abort(new LlmDeadlineError(options.timeoutMs));
    model.abort(deadline.signal.reason);
  }, options.timeoutMs);
  if (callerSignal?.aborted) model.abort(callerSignal.reason);
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  let text = '';
  let emitted = '';
  let tooLong = false;
  // The streamed answer is read once, character by character, never re-parsed whole (retries start from no text).
  const scanner = new AnswerFieldScanner();
  try {
    const llm = withResponseFormat(options.llm, options.structuredOutput);
    for (let attempt = 0; ; attempt += 1) {
      try {
        const stream = await llm.stream(messages, {
          signal,
          callbacks: options.config.callbacks,
          tags: options.config.tags,
          metadata: options.config.metadata,
          // Retries are ours (below), with jitter and retry-after honoured; ChatOpenAI reads this call option.
          maxRetries: 0,
        } as Partial<RunnableConfig>);
        for await (const chunk of stream) {
          usage = addUsage(usage, chunk.usage_metadata);
          const piece = chunk.text ?? '';
          // Past the cap the reply cannot be used: stop reading it (and the endpoint) rather than buffer and parse it.
          if (text.length + piece.length > MAX_REPLY_CHARS) {
            tooLong = true;
            model.abort(new Error('The LLM reply passed the size cap.'));
            break;
          }
          text += piece;
          scanner.push(piece);
          const answer = scanner.answer;
          // Only growth is streamed, and no more than an answer may hold: a longer one falls back anyway.
          if (answer !== undefined && answer.length > emitted.length && emitted.length <= VQA_CHAIN_DEFAULTS.maxAnswerLength && answer.startsWith(emitted)) {
            const delta = answer.slice(emitted.length);
            emitted = answer;
            yield delta;
          }
        }
        break;
      } catch (error) {
        if (callerSignal?.aborted) throw callerSignal.reason ?? error;
        const remaining = options.timeoutMs - (Date.now() - startedAt);
        // A retry after text was streamed would make the client's printed answer and the result disagree.
        const delay = attempt < options.retries && text === '' && !deadline.signal.aborted && isRetryableLlmError(error) ? retryDelayMs(attempt + 1, error, options.backoff) : Infinity;
        if (delay >= remaining) {
          return withUsage({ ok: false, reason: classifyLlmError(error, { deadlineHit: deadline.signal.aborted, receivedText: text !== '', timeoutMs: options.timeoutMs }) });
        }
        try {
          await sleep(delay, signal);
        } catch (abort) {
          if (callerSignal?.aborted) throw callerSignal.reason ?? abort;
          return withUsage({ ok: false, reason: classifyLlmError(abort, { deadlineHit: true, receivedText: false, timeoutMs: options.timeoutMs }) });
        }
      }
    }
  } finally {
    clearTimeout(timer);
    callerSignal?.removeEventListener('abort', onCallerAbort);
  }
  // A model that ignores the signal can still finish after the deadline; its late answer is not used.
  if (deadline.signal.aborted) {
    return withUsage({ ok: false, reason: classifyLlmError(deadline.signal.reason, { deadlineHit: true, receivedText: text !== '', timeoutMs: options.timeoutMs }) });
  }
  if (tooLong) return withUsage({ ok: false, reason: { code: 'llm_unusable', message: `The LLM's reply passed ${MAX_REPLY_CHARS} characters; it was cut off and not used.` } });
  const parsed = parseAnswerReply(text);
  if (!parsed.ok) return withUsage({ ok: false, reason: { code: parsed.code, message: parsed.message } });
  return withUsage(checkUsable(parsed.value));
}
