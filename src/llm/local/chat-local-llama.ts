import { availableParallelism } from 'node:os';
import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import { BaseChatModel, type BaseChatModelCallOptions, type BaseChatModelParams } from '@langchain/core/language_models/chat_models';
import { AIMessage, AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatResult } from '@langchain/core/outputs';
import type { LlamaChat, LlamaContext, LlamaGrammar } from 'node-llama-cpp';
import { InvalidOptionError, LocalLlmError } from '../../errors/index.js';
import { CoreBudget, sharedCoreBudget } from '../../runtime/core-budget.js';
import { ContextCores } from './context-cores.js';
import { countHistoryTokens, dropOldestTurns, fitHistory, type OverflowRecord } from './context-overflow.js';
import { getLlamaRuntime, type LlamaRuntime, type NodeLlamaCpp } from './llama-runtime.js';
import { loadLocalModel, type LoadedLocalModel } from './load-local-model.js';
import { readResponseFormat, type ReplyFormat } from './response-format.js';
import { SlotPool } from './slot-pool.js';
import { toChatHistory } from './to-chat-history.js';

/** Every default of {@link createLocalChatModel}, in one place for the CLI help and the docs. */
export const LOCAL_CHAT_MODEL_DEFAULTS = {
  /** Tokens per sequence: the VQA prompt with six turns of history is well under 2,000. */
  contextSize: 4096,
  /** Requests answered at once (llama.cpp evaluates their tokens in one batch). */
  sequences: 2,
  /** Requests that may wait for a sequence; more are refused with `busy`. */
  maxQueue: 16,
  /** Free-text replies. */
  maxTokens: 256,
  /** Grammar-constrained replies end with the grammar; this only stops a degenerate one. */
  structuredMaxTokens: 2048,
  /** Longest open string in a grammar-constrained reply: the chain's longest acceptable answer. */
  maxStringLength: 500,
  temperature: 0,
  /** Per call, waiting for a sequence included. */
  timeoutMs: 120_000,
  /**
   * The LLM step's deadline the CLI gives the chain with this model (the chain's own default, 30 s, suits endpoints):
   * a 1.5B model's prompt takes seconds on two idle cores and tens of seconds on busy ones.
   */
  llmStepTimeoutMs: 120_000,
} as const;

export interface LocalChatModelOptions extends BaseChatModelParams {
  /** Path of the .gguf file (an instruct model with a chat template). */
  model: string;
  /**
   * CPU threads for evaluation. Default: the core budget's cores (every core, `os.availableParallelism()`, with the
   * default budget or none); never more than the budget's cores.
   */
  threads?: number;
  /**
   * Where each generation (prompt evaluation and token generation) takes its `threads` cores before it runs, and
   * gives them back when it ends or is aborted: the budget the vision models draw from, so that llama.cpp's threads
   * and onnxruntime's take turns instead of slowing each other down. Default: the process's budget
   * (`sharedCoreBudget()`, which `createVisionModels` uses unless given `cores`); `false` draws from none, and the
   * model's threads then run whenever asked (what 0.1 did, and what vision models under `scheduling: 'split'` do).
   */
  coreBudget?: CoreBudget | false;
  /** Context tokens per sequence. Default 4096. */
  contextSize?: number;
  /** Requests answered at once, each in its own context sequence. Default 2. */
  sequences?: number;
  /** Requests that may wait for a free sequence; beyond it, calls fail with `busy`. Default 16. */
  maxQueue?: number;
  /** Most tokens of a free-text reply. Default 256. */
  maxTokens?: number;
  /** Most tokens of a grammar-constrained reply (a safety net; the grammar ends it first). Default 2048. */
  structuredMaxTokens?: number;
  /** Bound given to strings a JSON schema leaves open, so that constrained replies end. Default 500. */
  maxStringLength?: number;
  /** Default 0 (greedy): the chain picks among candidates, where creativity only hurts. */
  temperature?: number;
  /** Sampling seed, for temperature above 0. */
  seed?: number;
  /** Deadline of one call, queue wait included; past it the call rejects with a `TimeoutError`. Default 120000. */
  timeoutMs?: number;
  /** Shown with `model_not_found`: how to get the file (the CLI names the default model's download). */
  missingHint?: string;
  /** Loads node-llama-cpp; for tests that simulate it missing. Default `import('node-llama-cpp')`. */
  importModule?: () => Promise<NodeLlamaCpp>;
}

/** Call options: LangChain's, and OpenAI's `response_format`, which the VQA chain binds for its answer JSON. */
export interface LocalChatModelCallOptions extends BaseChatModelCallOptions {
  response_format?: unknown;
}

interface LoadedState extends LoadedLocalModel {
  runtime: LlamaRuntime;
  context: LlamaContext;
  /** The context's hold on the core budget, when it draws from one. */
  cores?: ContextCores;
  pool: SlotPool<LlamaChat>;
  grammars: Map<string, Promise<LlamaGrammar>>;
}

function checkInteger(name: string, value: number, minimum: number): number {
  if (!Number.isInteger(value) || value < minimum) throw new InvalidOptionError('invalid_value', `${name} must be an integer of at least ${minimum}, got ${String(value)}.`);
  return value;
}

function timeoutError(ms: number): Error {
  // The name the chain (and fetch) use for a deadline, so that it is told as a timeout, not a failure.
  return new DOMException(`The local model did not answer within ${ms} ms.`, 'TimeoutError');
}

/** Text chunks from a callback-style producer, consumed as an async iterator. */
class ChunkQueue {
  private readonly items: string[] = [];
  private wake?: () => void;
  private ended = false;
  private error: unknown;
  private failed = false;

  push(text: string): void {
    this.items.push(text);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  fail(error: unknown): void {
    this.failed = true;
    this.error = error;
    this.wake?.();
  }

  async *drain(): AsyncGenerator<string> {
    for (;;) {
      if (this.items.length > 0) {
        yield this.items.shift()!;
        continue;
      }
      if (this.failed) throw this.error;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

/**
 * An embedded LLM: a GGUF instruct model run in this process by node-llama-cpp (llama.cpp's CPU kernels), as a
 * LangChain chat model. The VQA chain, chat sessions, tools and the server use it like any other model: streamed
 * deltas, the call's `signal` and `timeout`, token usage in `usage_metadata`. Build it with
 * {@link createLocalChatModel}.
 *
 * - node-llama-cpp is imported on first use only (an optional dependency); the model loads on first call or
 *   {@link ChatLocalLlama.load}, once, and serves every request from one instance.
 * - Requests run in `sequences` context sequences at once (llama.cpp batches their tokens), up to `maxQueue` more
 *   wait; evaluation runs on llama.cpp's own threads, never on the event loop.
 * - With a `response_format` JSON schema (the chain binds one for `{shortAnswer, answer}`), generation is constrained
 *   by node-llama-cpp's JSON-schema grammar, so the reply is valid JSON of that schema by construction.
 * - A conversation longer than the context loses its oldest turns; one that cannot fit fails with `context_overflow`.
 */
export class ChatLocalLlama extends BaseChatModel<LocalChatModelCallOptions, AIMessageChunk> {
  static override lc_name(): string {
    return 'ChatLocalLlama';
  }

  /** The chain reads this to constrain replies with the answer's JSON schema instead of asking in the prompt. */
  readonly preferredStructuredOutput = 'json-schema' as const;
  /** The model's name for results' `models.llm`: the GGUF's `general.name` once loaded, its file name before. */
  model: string;
  readonly modelPath: string;
  /** The budget each generation draws its cores from; undefined when built with `coreBudget: false`. */
  readonly coreBudget: CoreBudget | undefined;
  private readonly settings: Required<Omit<LocalChatModelOptions, keyof BaseChatModelParams | 'model' | 'seed' | 'missingHint' | 'importModule' | 'coreBudget'>> &
    Pick<LocalChatModelOptions, 'seed' | 'missingHint' | 'importModule'>;
  private state?: Promise<LoadedState>;
  private disposed = false;

  constructor(options: LocalChatModelOptions) {
    const { model, threads, coreBudget, contextSize, sequences, maxQueue, maxTokens, structuredMaxTokens, maxStringLength, temperature, seed, timeoutMs, missingHint, importModule, ...base } = options;
    super(base);
    if (typeof model !== 'string' || model.trim() === '') throw new InvalidOptionError('invalid_value', 'model must be the path of a .gguf file.');
    this.modelPath = model;
    this.model = model.split(/[\\/]/).at(-1)!.replace(/\.gguf$/i, '');
    const resolvedTemperature = temperature ?? LOCAL_CHAT_MODEL_DEFAULTS.temperature;
    if (!Number.isFinite(resolvedTemperature) || resolvedTemperature < 0) throw new InvalidOptionError('invalid_value', `temperature must be a non-negative number, got ${String(temperature)}.`);
    if (coreBudget !== undefined && coreBudget !== false && !(coreBudget instanceof CoreBudget)) {
      throw new InvalidOptionError('invalid_value', 'coreBudget must be a CoreBudget (the one the vision models draw from) or false.');
    }
    this.coreBudget = coreBudget === false ? undefined : (coreBudget ?? sharedCoreBudget());
    const requestedThreads = checkInteger('threads', threads ?? this.coreBudget?.cores ?? availableParallelism(), 1);
    this.settings = {
      // More threads than the budget grants would run on cores other runs hold.
      threads: this.coreBudget ? Math.min(requestedThreads, this.coreBudget.cores) : requestedThreads,
      contextSize: checkInteger('contextSize', contextSize ?? LOCAL_CHAT_MODEL_DEFAULTS.contextSize, 64),
      sequences: checkInteger('sequences', sequences ?? LOCAL_CHAT_MODEL_DEFAULTS.sequences, 1),
      maxQueue: checkInteger('maxQueue', maxQueue ?? LOCAL_CHAT_MODEL_DEFAULTS.maxQueue, 0),
      maxTokens: checkInteger('maxTokens', maxTokens ?? LOCAL_CHAT_MODEL_DEFAULTS.maxTokens, 1),
      structuredMaxTokens: checkInteger('structuredMaxTokens', structuredMaxTokens ?? LOCAL_CHAT_MODEL_DEFAULTS.structuredMaxTokens, 1),
      maxStringLength: checkInteger('maxStringLength', maxStringLength ?? LOCAL_CHAT_MODEL_DEFAULTS.maxStringLength, 1),
      temperature: resolvedTemperature,
      timeoutMs: checkInteger('timeoutMs', timeoutMs ?? LOCAL_CHAT_MODEL_DEFAULTS.timeoutMs, 1),
      ...(seed !== undefined ? { seed } : {}),
      ...(missingHint !== undefined ? { missingHint } : {}),
      ...(importModule !== undefined ? { importModule } : {}),
    };
  }

  _llmType(): string {
    return 'llama-cpp';
  }

  /**
   * Loads node-llama-cpp and the model now rather than on the first question, so that a bad file fails early.
   * Safe to call any number of times; a failed load is retried on the next call.
   *
   * @throws {LocalLlmError} `runtime_missing`, `model_not_found`, `invalid_gguf`, `no_chat_template`,
   * `unsupported_architecture`, `model_corrupt` or `disposed`.
   */
  async load(): Promise<{ name: string; architecture: string; contextSize: number; sequences: number; threads: number }> {
    const state = await this.loaded();
    return { name: state.name, architecture: state.architecture, contextSize: state.context.contextSize, sequences: this.settings.sequences, threads: state.context.idealThreads };
  }

  /** Releases the model, its context and its memory; waiting calls fail with `disposed`. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const state = await this.state?.catch(() => undefined);
    if (!state) return;
    state.pool.dispose();
    await state.context.dispose();
    await state.model.dispose();
  }

  private loaded(): Promise<LoadedState> {
    if (this.disposed) return Promise.reject(new LocalLlmError('disposed', 'The local model was disposed.'));
    this.state ??= this.open().catch((error: unknown) => {
      this.state = undefined;
      throw error;
    });
    return this.state;
  }

  private async open(): Promise<LoadedState> {
    const runtime = await getLlamaRuntime(this.settings.importModule ? { importModule: this.settings.importModule } : {});
    const loaded = await loadLocalModel({ runtime, path: this.modelPath, ...(this.settings.missingHint ? { missingHint: this.settings.missingHint } : {}) });
    let context: LlamaContext;
    try {
      context = await loaded.model.createContext({
        contextSize: this.settings.contextSize,
        sequences: this.settings.sequences,
        threads: this.settings.threads,
      });
    } catch (error) {
      await loaded.model.dispose();
      throw error;
    }
    const chats: LlamaChat[] = [];
    for (let index = 0; index < this.settings.sequences; index += 1) chats.push(new runtime.module.LlamaChat({ contextSequence: context.getSequence() }));
    this.model = loaded.name;
    const cores = this.coreBudget ? new ContextCores({ budget: this.coreBudget, cores: this.settings.threads }) : undefined;
    return { ...loaded, runtime, context, ...(cores ? { cores } : {}), pool: new SlotPool({ slots: chats, maxQueue: this.settings.maxQueue }), grammars: new Map() };
  }

  private grammarFor(state: LoadedState, format: ReplyFormat): Promise<LlamaGrammar> | undefined {
    if (format.type === 'text') return undefined;
    const key = format.type === 'json' ? 'json' : format.key;
    let grammar = state.grammars.get(key);
    if (!grammar) {
      grammar = format.type === 'json' ? state.runtime.llama.getGrammarFor('json') : state.runtime.llama.createGrammarForJsonSchema(format.schema as Parameters<LlamaRuntime['llama']['createGrammarForJsonSchema']>[0]);
      state.grammars.set(key, grammar);
      // A schema that failed to compile is not kept: the next call tries again (and fails the same, told each time).
      grammar.catch(() => state.grammars.delete(key));
    }
    return grammar;
  }

  async _generate(messages: BaseMessage[], options: this['ParsedCallOptions'], runManager?: CallbackManagerForLLMRun): Promise<ChatResult> {
    let text = '';
    let last: AIMessageChunk | undefined;
    for await (const chunk of this._streamResponseChunks(messages, options, runManager)) {
      text += chunk.text;
      last = chunk.message as AIMessageChunk;
    }
    const message = new AIMessage({ content: text, usage_metadata: last?.usage_metadata, response_metadata: last?.response_metadata ?? {} });
    return { generations: [{ text, message }], llmOutput: { tokenUsage: last?.usage_metadata } };
  }

  override async *_streamResponseChunks(messages: BaseMessage[], options: this['ParsedCallOptions'], runManager?: CallbackManagerForLLMRun): AsyncGenerator<ChatGenerationChunk> {
    const history = toChatHistory(messages);
    const format = readResponseFormat(options.response_format, { minLength: 1, maxLength: this.settings.maxStringLength });
    // One controller for the whole call: the caller's signal, and this model's own deadline (queue wait included).
    const controller = new AbortController();
    const callerSignal = options.signal;
    const onCallerAbort = (): void => controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) controller.abort(callerSignal.reason);
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = setTimeout(() => controller.abort(timeoutError(this.settings.timeoutMs)), this.settings.timeoutMs);
    const { signal } = controller;
    const cleanUp = (): void => {
      clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    };
    let lease: Awaited<ReturnType<SlotPool<LlamaChat>['acquire']>> | undefined;
    let releaseCores: (() => void) | undefined;
    let generation: Promise<unknown> | undefined;
    let settled = false;
    try {
      const state = await this.loaded();
      const grammar = await this.grammarFor(state, format);
      lease = await state.pool.acquire(signal);
      const chat = lease.slot;
      const queue = new ChunkQueue();
      const overflow: OverflowRecord = { droppedItems: 0 };
      const maxTokens = grammar ? this.settings.structuredMaxTokens : this.settings.maxTokens;
      // Checked before generating, since node-llama-cpp swallows a failing context-shift strategy: the reply keeps
      // at least a quarter of the context (or its whole budget, when smaller).
      const contextSize = state.context.contextSize;
      const promptBudget = contextSize - Math.min(maxTokens, Math.floor(contextSize / 4));
      const fitted = fitHistory(history, promptBudget, (items) => countHistoryTokens(items, chat.chatWrapper, state.model.tokenizer), overflow);
      // The cores are taken last, for the generation alone: waiting for them holds a sequence, never the reverse.
      releaseCores = await state.cores?.acquire(signal);
      let outputTokens = 0;
      let contextTokens = 0;
      const started = performance.now();
      let firstTokenMs: number | undefined;
      generation = chat
        .generateResponse(fitted, {
          ...(grammar ? { grammar } : {}),
          maxTokens,
          temperature: this.settings.temperature,
          ...(this.settings.seed !== undefined ? { seed: this.settings.seed } : {}),
          // No penalty: a JSON reply repeats its keys and quotes by design.
          repeatPenalty: false,
          signal,
          stopOnAbortSignal: false,
          contextShift: { strategy: dropOldestTurns(overflow) },
          onToken: (tokens) => {
            firstTokenMs ??= performance.now() - started;
            outputTokens += tokens.length;
          },
          onTextChunk: (text) => queue.push(text),
        })
        .then(
          (response) => {
            settled = true;
            // Read before the sequence goes back to the pool, where the next request changes it.
            contextTokens = chat.sequence.contextTokens.length;
            queue.end();
            return response;
          },
          (error: unknown) => {
            settled = true;
            queue.fail(signal.aborted ? signal.reason : error);
          },
        );
      // The sequence goes back when generation ends, whoever reads: a caller that aborts may never pull this
      // generator again (LangChain rejects its read at once), so its finally block cannot be relied on to run.
      const leased = lease;
      const coresHeld = releaseCores;
      void generation.finally(() => {
        // llama.cpp's threads have stopped (generateResponse settles after its last batch): the cores are free.
        coresHeld?.();
        cleanUp();
        leased.release();
      });
      for await (const text of queue.drain()) {
        yield new ChatGenerationChunk({ text, message: new AIMessageChunk({ content: text }) });
        await runManager?.handleLLMNewToken(text);
      }
      const response = (await generation) as Awaited<ReturnType<LlamaChat['generateResponse']>>;
      const inputTokens = Math.max(0, contextTokens - outputTokens);
      yield new ChatGenerationChunk({
        text: '',
        message: new AIMessageChunk({
          content: '',
          usage_metadata: { input_tokens: inputTokens, output_tokens: outputTokens, total_tokens: inputTokens + outputTokens },
          response_metadata: {
            model: this.model,
            stopReason: response.metadata.stopReason,
            ...(overflow.droppedItems > 0 ? { droppedHistoryItems: overflow.droppedItems } : {}),
            ...(firstTokenMs !== undefined ? { firstTokenMs: Math.round(firstTokenMs) } : {}),
          },
        }),
      });
    } finally {
      if (!generation) {
        releaseCores?.();
        cleanUp();
        lease?.release();
      } else if (!settled) {
        // A reader that stopped early must not leave the sequence generating for the next request.
        if (!controller.signal.aborted) controller.abort(new DOMException('The reader stopped.', 'AbortError'));
        await generation.catch(() => undefined);
      }
    }
  }
}

/**
 * Builds the embedded LLM: a GGUF instruct model run in-process by node-llama-cpp, as a LangChain chat model. See
 * {@link ChatLocalLlama}. Nothing loads until the first call (or `load()`); `dispose()` releases it.
 *
 * @throws {InvalidOptionError} for a bad option, naming it. Load problems come from the first call or `load()`
 * as {@link LocalLlmError}s.
 *
 * @example
 * ```ts
 * const llm = createLocalChatModel({ model: '/models/qwen2.5-1.5b-instruct-q4_k_m.gguf' });
 * const chain = createVqaChain({ vision, llm });
 * const result = await chain.invoke({ image: 'fishing.jpg', question: "What is in the man's hand?" });
 * await llm.dispose();
 * ```
 */
export function createLocalChatModel(options: LocalChatModelOptions): ChatLocalLlama {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('invalid_value', 'createLocalChatModel needs an options object with model (a .gguf path).');
  return new ChatLocalLlama(options);
}
