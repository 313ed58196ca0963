// Shapes of the VQA chain's input, options, result and stream. Code lives in vqa-chain.ts and vqa-chat.ts.
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { RunnableConfig } from '@langchain/core/runnables';
import type { FewShotExample } from '../prompts/few-shot.js';
import type { VqaTurn } from '../prompts/vqa-v1.js';
import type { CircuitBreaker } from '../src/llm/circuit-breaker.js';
import type { RetryBackoff } from '../src/llm/retry-policy.js';
import type { Candidate, CaptionOptions, ImageInput, StageTimings, VisionModels, VqaWarning } from '../src/types.js';

export type { FewShotExample, VqaTurn };

/** Caption settings per call; the signal comes from the RunnableConfig, not from here. */
export type VqaCaptionOptions = Omit<CaptionOptions, 'signal'>;

/** One question about one image. */
export interface VqaInput {
  image: ImageInput;
  question: string;
  /** How many VQA candidates to compute and show the LLM. Default: the chain's `topK`. */
  topK?: number;
  /** Overrides the chain's `captionOptions` for this call. */
  captionOptions?: VqaCaptionOptions;
  /** Earlier turns about the same image, oldest first; the chain keeps only the last `maxHistoryTurns`. */
  history?: readonly VqaTurn[];
}

/**
 * Why the answer came from the VQA model rather than the LLM. The codes are stable; messages are for people.
 * - `llm_disabled`: no LLM configured (`llm: 'none'`).
 * - `llm_timeout`: the LLM step passed `llmTimeoutMs`.
 * - `llm_aborted`: the LLM call was aborted by something other than the caller's signal.
 * - `llm_rate_limited`: HTTP 429 after the retries.
 * - `llm_http_error`: any other HTTP error status after the retries.
 * - `llm_connection_error`: the endpoint could not be reached.
 * - `llm_stream_interrupted`: the reply stopped midway.
 * - `llm_empty`: the reply had no text.
 * - `llm_malformed`: the reply had no JSON object with `shortAnswer` and `answer`.
 * - `llm_unusable`: the reply was well formed but could not be shown (empty field, too long, echoed the prompt).
 * - `llm_error`: anything else the model threw.
 * - `llm_circuit_open`: the LLM endpoint failed repeatedly, so its circuit breaker is open and it was not called.
 */
export type FallbackCode =
  | 'llm_disabled'
  | 'llm_timeout'
  | 'llm_aborted'
  | 'llm_rate_limited'
  | 'llm_http_error'
  | 'llm_connection_error'
  | 'llm_stream_interrupted'
  | 'llm_empty'
  | 'llm_malformed'
  | 'llm_unusable'
  | 'llm_error'
  | 'llm_circuit_open';

export interface FallbackReason {
  code: FallbackCode;
  message: string;
  /** HTTP status, when the LLM endpoint answered with an error. */
  status?: number;
}

/** Wall-clock milliseconds per stage of one question. */
export interface VqaTimings {
  /** Question validation and image loading (decode, hash). */
  prepare: number;
  /** Captioning, as the caption stage saw it (short when the caption was cached). */
  caption: number;
  /** VQA candidates (image encoder unless cached, then fusion). */
  candidates: number;
  /** Caption and candidates together; they run concurrently, so this is about the larger of the two. */
  vision: number;
  /** The LLM step, retries included; 0 without an LLM. */
  llm: number;
  total: number;
  /** The vision models' own per-stage timings (decode, preprocess, encoder, decoder, fusion...). */
  stages: { caption: StageTimings; candidates: StageTimings };
}

/**
 * The LLM's token counts for one question, as the LLM reported them (LangChain's `usage_metadata`), summed over the
 * attempts of the LLM step (retries included), whether or not its answer was used.
 */
export interface LlmUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

/** The result of one question, as the design brief defines it. */
export interface VqaResult {
  /** One sentence for a person: the LLM's, or built from the top candidate on fallback. */
  answer: string;
  /** A few words: the LLM's short answer, or the top candidate on fallback ('' when there is none). */
  shortAnswer: string;
  question: string;
  caption: string;
  /** The VQA model's top-k, best first, with softmax scores as the upstream pipeline reports them. */
  candidates: Candidate[];
  source: 'llm' | 'vqa';
  /** Present exactly when `source` is `vqa`. */
  fallbackReason?: FallbackReason;
  /** The candidate the short answer matches after normalisation (case, articles, punctuation, number words). */
  matchedCandidate?: { index: number; answer: string };
  /** From the VQA model, e.g. a question longer than its fine-tuning questions (it still ran whole, as upstream). */
  warnings?: VqaWarning[];
  /** Whether image-only work came from the per-image cache (a follow-up question about the same image). */
  cached: { caption: boolean; imageEmbeddings: boolean };
  timings: VqaTimings;
  models: { caption: string; vqa: string; llm: string | null; prompt: string };
  /**
   * The LLM's tokens, present exactly when it reported them: absent without an LLM call (`llm: 'none'`, an open
   * circuit) and when the endpoint sends no usage (ChatOpenAI asks for it in streams only with `streamUsage` on).
   */
  usage?: LlmUsage;
}

/**
 * What `stream()` yields, in this order:
 * 1. one `vision` chunk once the caption and candidates are ready;
 * 2. `answer-delta` chunks: the sentence (`answer`) as it arrives, to append;
 * 3. exactly one `result` chunk, last, with the full result.
 *
 * The deltas add up to `answer`, except after an LLM reply that breaks off or proves unusable (cut off, malformed,
 * too long): then the result has `source: 'vqa'` and a different `answer`, and a display should replace what it
 * printed with `result.answer`. The fallback sentence (no LLM, or an LLM that failed before any text) comes as one
 * delta.
 */
export type VqaStreamChunk<Result = VqaResult> =
  | { type: 'vision'; caption: string; candidates: Candidate[] }
  | { type: 'answer-delta'; text: string }
  | { type: 'result'; result: Result };

/** How the LLM is asked for JSON. */
export type StructuredOutputMode =
  /** `response_format: json_schema` with {@link VqaAnswerSchema} (OpenAI, vLLM, llama.cpp server, Ollama, LM Studio). */
  | 'json-schema'
  /** `response_format: json_object` for servers that know JSON mode but not schemas. */
  | 'json-object'
  /** Only the prompt asks for JSON; the tolerant parser reads what comes back. */
  | 'prompt';

export interface VqaChainOptions {
  /** The vision side: `createVisionModels(...)` from the runtime, or any implementation of the interface. */
  vision: VisionModels;
  /** Any LangChain chat model, or `'none'` to answer with the top VQA candidate. */
  llm: BaseChatModel | 'none';
  /** Candidates per question. Default 5. */
  topK?: number;
  /** Caption settings for every call (e.g. `{ numBeams: 3, prefix: 'a picture of' }`). Default: the model's generation config. */
  captionOptions?: VqaCaptionOptions;
  /** Deadline for the whole LLM step, retries included; past it the answer falls back to the VQA model. Default 30000. */
  llmTimeoutMs?: number;
  /**
   * Retries of transient LLM errors (429, 5xx, connection) before any text arrived, made by the chain itself with
   * jittered exponential backoff that honours `retry-after`. Always within `llmTimeoutMs`. Default 2.
   */
  llmRetries?: number;
  /** Backoff between LLM retries: exponential with jitter, never shorter than the endpoint's retry-after. */
  llmRetryBackoff?: RetryBackoff;
  /**
   * Shared across calls so that a dead endpoint costs milliseconds: once open, the LLM step falls back with
   * `llm_circuit_open` without a request. See `createCircuitBreaker`. Default none.
   */
  llmCircuitBreaker?: CircuitBreaker;
  /** Worked examples put before the question; `true` uses {@link FEW_SHOT_EXAMPLES}. Default none. */
  fewShot?: boolean | readonly FewShotExample[];
  /** Default `json-schema` for ChatOpenAI and the embedded LLM (a grammar constrains its reply), `prompt` for other models. */
  structuredOutput?: StructuredOutputMode;
  /** Longest accepted question in characters. Default 1000. */
  maxQuestionLength?: number;
  /** Earlier turns passed to the LLM; older ones are dropped. Default 6. */
  maxHistoryTurns?: number;
  /** Default concurrency of `batch()` when the call does not set `maxConcurrency`. Default 2, suited to 2 cores. */
  maxConcurrency?: number;
}

/** Call options: LangChain's RunnableConfig (`signal`, `timeout`, `callbacks`, `maxConcurrency`...). */
export type VqaCallOptions = RunnableConfig;
