import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { ChatOpenAI } from '@langchain/openai';
import { InvalidOptionError } from '../errors/index.js';
import { createLocalChatModel } from './local/chat-local-llama.js';
import { locateLocalModel } from './local/local-model-path.js';
import { CHAT_MODEL_DEFAULTS, nonEmpty, resolveLlmProvider, type LlmProvider } from './llm-provider.js';

export { CHAT_MODEL_DEFAULTS, resolveLlmProvider, type LlmProvider } from './llm-provider.js';

export interface ChatModelOptions {
  /**
   * `openai` uses ChatOpenAI; `local` the embedded model ({@link createLocalChatModel}); `none` returns `'none'`
   * (the chain then answers with the top VQA candidate); `auto` (default) is `openai` when `OPENAI_API_KEY` or
   * `OPENAI_BASE_URL` is set, else `local` when the local model's file is there, else `none`.
   */
  provider?: LlmProvider;
  /**
   * The local model: a .gguf path, or a file name in `modelsDir`. Default: `VQA_LLM_LOCAL_MODEL`, else the default
   * model's file (`DEFAULT_LOCAL_LLM`) in `modelsDir`.
   */
  localModel?: string;
  /** Where the local model's file is looked up. Default: `VQA_LLM_MODELS`, else the per-user data folder. */
  modelsDir?: string;
  /** CPU threads of the local model. Default: every core. */
  threads?: number;
  /** Context tokens per sequence of the local model. Default 4096. */
  contextSize?: number;
  /** Model name. Default: `VQA_LLM_MODEL`, else `gpt-4o-mini`. */
  model?: string;
  /** Base URL of an OpenAI-compatible API (vLLM, llama.cpp server, Ollama, LM Studio). Default: `OPENAI_BASE_URL`, else OpenAI. */
  baseUrl?: string;
  /** Default: `OPENAI_API_KEY`. Not needed for a custom `baseUrl` (local servers ignore it). */
  apiKey?: string;
  /** Per HTTP attempt. Default 30000. */
  timeoutMs?: number;
  /**
   * Retries of transient errors (429, 5xx, connection) when the model is called on its own. Inside the VQA chain
   * the chain retries instead (`llmRetries`, jittered backoff honouring `retry-after`, within `llmTimeoutMs`, behind
   * the circuit breaker) and calls the model with `maxRetries: 0`. Default 2.
   */
  maxRetries?: number;
  /** Default 0: the chain picks among candidates, where creativity only hurts. */
  temperature?: number;
  /** Default 256: the reply is a short JSON object. */
  maxTokens?: number;
  /**
   * Ask for token usage in streamed replies (`stream_options.include_usage`), so that results and the server's
   * `usage` carry the LLM's counts. Default: true for api.openai.com, false for a custom `baseUrl`, because several
   * local servers reject `stream_options`; set it (or `VQA_LLM_STREAM_USAGE=1`) for one that accepts it (vLLM,
   * llama.cpp server, recent Ollama).
   */
  streamUsage?: boolean;
  /** Environment to read `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `VQA_LLM_MODEL` from. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

// OpenAI's client refuses to start without a key even when the server ignores it, as local servers do.
const PLACEHOLDER_API_KEY = 'not-needed';

function checkNonNegativeInteger(name: string, value: number, minimum: number): void {
  if (!Number.isInteger(value) || value < minimum) {
    throw new InvalidOptionError('invalid_value', `${name} must be an integer of at least ${minimum}, got ${String(value)}.`);
  }
}

/**
 * Builds the chat model the VQA chain uses, with every timeout and retry set explicitly: ChatOpenAI's own
 * defaults let one call run for over an hour.
 *
 * Returns `'none'` for the `none` provider, which {@link createVqaChain} accepts as its `llm`, and a
 * `ChatLocalLlama` for `local` (load it with `load()`, release it with `dispose()`).
 *
 * @throws {InvalidOptionError} for a bad option, or when OpenAI itself is the endpoint and no API key is set.
 *
 * @example
 * ```ts
 * // A llama.cpp server on loopback: no key needed.
 * const llm = createChatModel({ provider: 'openai', baseUrl: 'http://127.0.0.1:8080/v1', model: 'qwen2.5-7b-instruct' });
 * const chain = createVqaChain({ vision, llm });
 * ```
 */
export function createChatModel(options: ChatModelOptions = {}): BaseChatModel | 'none' {
  const env = options.env ?? process.env;
  const provider = resolveLlmProvider(options.provider, env, options);
  if (provider === 'none') return 'none';
  if (provider === 'local') {
    const location = locateLocalModel({ model: options.localModel, modelsDir: options.modelsDir, env });
    // Nothing loads here: the first call (or load()) does, and a missing file is told with how to get it.
    return createLocalChatModel({
      model: location.path,
      missingHint: location.hint,
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      ...(options.contextSize !== undefined ? { contextSize: options.contextSize } : {}),
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
    });
  }

  const timeoutMs = options.timeoutMs ?? CHAT_MODEL_DEFAULTS.timeoutMs;
  const maxRetries = options.maxRetries ?? CHAT_MODEL_DEFAULTS.maxRetries;
  const maxTokens = options.maxTokens ?? CHAT_MODEL_DEFAULTS.maxTokens;
  const temperature = options.temperature ?? CHAT_MODEL_DEFAULTS.temperature;
  checkNonNegativeInteger('timeoutMs', timeoutMs, 1);
  checkNonNegativeInteger('maxRetries', maxRetries, 0);
  checkNonNegativeInteger('maxTokens', maxTokens, 1);
  if (!Number.isFinite(temperature) || temperature < 0) {
    throw new InvalidOptionError('invalid_value', `temperature must be a non-negative number, got ${String(temperature)}.`);
  }

  const model = nonEmpty(options.model) ?? nonEmpty(env.VQA_LLM_MODEL) ?? CHAT_MODEL_DEFAULTS.model;
  const customBaseUrl = nonEmpty(options.baseUrl) ?? nonEmpty(env.OPENAI_BASE_URL);
  if (customBaseUrl !== undefined) {
    try {
      new URL(customBaseUrl);
    } catch {
      throw new InvalidOptionError('invalid_value', `baseUrl is not a URL: ${JSON.stringify(customBaseUrl)}.`, {
        hint: 'Set OPENAI_BASE_URL to e.g. http://127.0.0.1:8080/v1.',
      });
    }
  }
  let apiKey = nonEmpty(options.apiKey) ?? nonEmpty(env.OPENAI_API_KEY);
  if (apiKey === undefined) {
    if (customBaseUrl === undefined) {
      throw new InvalidOptionError('invalid_value', 'The openai provider needs an API key for api.openai.com.', {
        hint: 'Set OPENAI_API_KEY, point OPENAI_BASE_URL at an OpenAI-compatible server, or use --llm none.',
      });
    }
    apiKey = PLACEHOLDER_API_KEY;
  }

  return new ChatOpenAI({
    model,
    apiKey,
    temperature,
    maxTokens,
    timeout: timeoutMs,
    maxRetries,
    streamUsage: options.streamUsage ?? (nonEmpty(env.VQA_LLM_STREAM_USAGE) === undefined ? customBaseUrl === undefined : /^(1|true|yes)$/i.test(env.VQA_LLM_STREAM_USAGE!.trim())),
    configuration: { baseURL: customBaseUrl ?? CHAT_MODEL_DEFAULTS.baseUrl },
  });
}
