import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import { RunnableLambda, RunnableParallel, RunnablePassthrough, RunnableSequence, type RunnableConfig } from '@langchain/core/runnables';
import type { IterableReadableStream } from '@langchain/core/utils/stream';
import { FEW_SHOT_EXAMPLES, type FewShotExample } from '../prompts/few-shot.js';
import { buildVqaPromptValues, VQA_PROMPT_VERSION, vqaPromptV1, type VqaTurn } from '../prompts/vqa-v1.js';
import { InvalidOptionError } from '../src/errors/index.js';
import { validateQuestion } from '../src/question.js';
import type { CandidatesResult, CaptionResult, LoadedImage, VisionModels } from '../src/types.js';
import { VQA_CHAIN_DEFAULTS } from './defaults.js';
import { fallbackAnswer } from './fallback.js';
import { defaultStructuredOutput, describeLlm, runLlmStep, type LlmOutcome } from './llm-step.js';
import { matchCandidate } from './match-candidate.js';
import { RunnableWithChunks, traceSteps } from './runnable-with-chunks.js';
import type {
  StructuredOutputMode,
  VqaCallOptions,
  VqaCaptionOptions,
  VqaChainOptions,
  VqaInput,
  VqaResult,
  VqaStreamChunk,
} from './types.js';

/** The input after validation, with the image decoded once for both vision models. */
interface PreparedInput {
  question: string;
  image: LoadedImage;
  topK: number;
  captionOptions: VqaCaptionOptions;
  history: VqaTurn[];
  startedAt: number;
  prepareMs: number;
}

interface VisionOutput {
  prepared: PreparedInput;
  caption: { result: CaptionResult; ms: number };
  candidates: { result: CandidatesResult; ms: number };
  visionMs: number;
}

interface ResolvedOptions {
  vision: VisionModels;
  llm: BaseChatModel | 'none';
  topK: number;
  captionOptions: VqaCaptionOptions;
  llmTimeoutMs: number;
  llmRetries: number;
  fewShot: readonly FewShotExample[];
  structuredOutput: StructuredOutputMode;
  maxQuestionLength: number;
  maxHistoryTurns: number;
  maxConcurrency: number;
  llmCircuitBreaker?: VqaChainOptions['llmCircuitBreaker'];
  llmRetryBackoff?: VqaChainOptions['llmRetryBackoff'];
}

function checkInteger(name: string, value: unknown, minimum: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new InvalidOptionError('invalid_value', `${name} must be an integer of at least ${minimum}, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function resolveOptions(options: VqaChainOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('invalid_value', 'createVqaChain needs an options object.');
  const { vision, llm } = options;
  if (typeof vision?.caption !== 'function' || typeof vision?.candidates !== 'function' || typeof vision?.loadImage !== 'function') {
    throw new InvalidOptionError('invalid_value', 'vision must implement VisionModels (loadImage, caption, candidates).', {
      hint: 'Build it with createVisionModels() from the runtime.',
    });
  }
  if (llm !== 'none' && typeof (llm as BaseChatModel | undefined)?.stream !== 'function') {
    throw new InvalidOptionError('invalid_value', "llm must be a LangChain chat model or 'none'.", { hint: 'Use createChatModel() for an OpenAI-compatible endpoint.' });
  }
  const structuredOutput = options.structuredOutput ?? (llm === 'none' ? 'prompt' : defaultStructuredOutput(llm));
  if (!['json-schema', 'json-object', 'prompt'].includes(structuredOutput)) {
    throw new InvalidOptionError('invalid_value', `structuredOutput must be 'json-schema', 'json-object' or 'prompt', got ${JSON.stringify(structuredOutput)}.`);
  }
  const fewShot = options.fewShot === true ? FEW_SHOT_EXAMPLES : options.fewShot === false || options.fewShot === undefined ? [] : options.fewShot;
  if (!Array.isArray(fewShot)) throw new InvalidOptionError('invalid_value', 'fewShot must be a boolean or an array of examples.');
  return {
    vision,
    llm,
    topK: checkInteger('topK', options.topK ?? VQA_CHAIN_DEFAULTS.topK, 1),
    captionOptions: { ...options.captionOptions },
    llmTimeoutMs: checkInteger('llmTimeoutMs', options.llmTimeoutMs ?? VQA_CHAIN_DEFAULTS.llmTimeoutMs, 1),
    llmRetries: checkInteger('llmRetries', options.llmRetries ?? VQA_CHAIN_DEFAULTS.llmRetries, 0),
    fewShot,
    structuredOutput,
    maxQuestionLength: checkInteger('maxQuestionLength', options.maxQuestionLength ?? VQA_CHAIN_DEFAULTS.maxQuestionLength, 1),
    maxHistoryTurns: checkInteger('maxHistoryTurns', options.maxHistoryTurns ?? VQA_CHAIN_DEFAULTS.maxHistoryTurns, 0),
    maxConcurrency: checkInteger('maxConcurrency', options.maxConcurrency ?? VQA_CHAIN_DEFAULTS.maxConcurrency, 1),
    ...(options.llmCircuitBreaker ? { llmCircuitBreaker: options.llmCircuitBreaker } : {}),
    ...(options.llmRetryBackoff ? { llmRetryBackoff: options.llmRetryBackoff } : {}),
  };
}

function checkHistory(history: unknown, maxTurns: number): VqaTurn[] {
  if (history === undefined) return [];
  const valid =
    Array.isArray(history) &&
    history.every((turn) => typeof turn?.question === 'string' && typeof turn?.shortAnswer === 'string' && typeof turn?.answer === 'string');
  if (!valid) throw new InvalidOptionError('invalid_value', 'history must be an array of { question, shortAnswer, answer } strings.');
  // Bounded so a long chat costs a fixed number of tokens; slice(-0) would keep everything.
  return maxTurns === 0 ? [] : (history as VqaTurn[]).slice(-maxTurns);
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await work();
  return { result, ms: performance.now() - start };
}

/** Passes a generator's values through `map` and returns its return value; stopping early stops the source. */
async function* mapYields<T, U, R>(source: AsyncGenerator<T, R>, map: (value: T) => U): AsyncGenerator<U, R> {
  try {
    for (;;) {
      const step = await source.next();
      if (step.done) return step.value;
      yield map(step.value);
    }
  } finally {
    await source.return(undefined as never);
  }
}

/**
 * The custom event that carries each answer delta, `{ text }`, from the `VqaAnswer` step: in `streamEvents` (v2) an
 * `on_custom_event` with this name, and `handleCustomEvent` for callbacks. It is dispatched however the chain runs
 * (`invoke` too, e.g. as an agent's tool), and its texts are exactly `stream()`'s `answer-delta` chunks.
 */
export const VQA_ANSWER_DELTA_EVENT = 'vqa_answer_delta';

/**
 * The VQA+LLM chain as a LangChain Runnable: `invoke`, `batch` (at most `maxConcurrency` questions at a time,
 * default 2), `stream` ({@link VqaStreamChunk}s), `streamEvents`, `.pipe()`, callbacks, and the RunnableConfig's
 * `signal` and `timeout` at every stage. Build it with {@link createVqaChain}.
 *
 * Each call is one `VqaChain` run with two children: `VqaVision` (input checks, image, caption and candidates
 * concurrently) and `VqaAnswer` (the LLM step, with the chat model's own run inside it, once per attempt; output:
 * the result). In `streamEvents` the chat model's `on_chat_model_stream` tokens are its raw JSON reply; the sentence
 * a person reads comes as `on_custom_event` {@link VQA_ANSWER_DELTA_EVENT} (`data.text`), and as the `VqaChain`
 * run's own `on_chain_stream` chunks (the `stream()` chunks).
 *
 * The caller's `signal`/`timeout` stop the whole call, which rejects (as every Runnable does). The LLM step has
 * its own deadline, `llmTimeoutMs`; past it, or on any LLM failure, the answer falls back to the VQA model.
 */
export class VqaChain extends RunnableWithChunks<VqaInput, VqaResult, VqaCallOptions, VqaStreamChunk> {
  lc_namespace = ['vqa_llm', 'chains'];

  static override lc_name(): string {
    return 'VqaChain';
  }

  /** The resolved options (defaults filled in). */
  readonly options: Readonly<ResolvedOptions>;
  /** validate + load image -> caption and candidates concurrently; the `VqaVision` step. */
  readonly visionPipeline: RunnableSequence<VqaInput, VisionOutput>;

  constructor(options: VqaChainOptions) {
    super();
    this.options = resolveOptions(options);
    const { vision } = this.options;

    const prepare = RunnableLambda.from(async (input: VqaInput, config?: RunnableConfig): Promise<PreparedInput> => {
      const startedAt = performance.now();
      if (typeof input !== 'object' || input === null) throw new InvalidOptionError('invalid_value', 'The input must be an object { image, question }.');
      // Everything about the question is checked before the image is touched: bad input costs no model work.
      const question = validateQuestion(input.question, { maxLength: this.options.maxQuestionLength });
      const topK = checkInteger('topK', input.topK ?? this.options.topK, 1);
      const history = checkHistory(input.history, this.options.maxHistoryTurns);
      const image = await vision.loadImage(input.image, { signal: config?.signal });
      const captionOptions = { ...this.options.captionOptions, ...input.captionOptions };
      return { question, image, topK, captionOptions, history, startedAt, prepareMs: performance.now() - startedAt };
    }).withConfig({ runName: 'PrepareInput' });

    const caption = RunnableLambda.from((prepared: PreparedInput, config?: RunnableConfig) =>
      timed(() => vision.caption(prepared.image, { ...prepared.captionOptions, signal: config?.signal })),
    ).withConfig({ runName: 'Caption' });

    const candidates = RunnableLambda.from((prepared: PreparedInput, config?: RunnableConfig) =>
      timed(() => vision.candidates(prepared.image, prepared.question, { topK: prepared.topK, signal: config?.signal })),
    ).withConfig({ runName: 'VqaCandidates' });

    const bothModels = RunnableParallel.from({
      prepared: new RunnablePassthrough<PreparedInput>(),
      caption,
      candidates,
    }).withConfig({ runName: 'CaptionAndCandidates' });
    // Vision starts when preparation ends, so its wall time needs no extra step before the parallel one.
    const visionEnd = RunnableLambda.from(
      (state: Omit<VisionOutput, 'visionMs'>): VisionOutput => ({
        ...state,
        visionMs: performance.now() - (state.prepared.startedAt + state.prepared.prepareMs),
      }),
    ).withConfig({ runName: 'VisionTimings' });

    this.visionPipeline = RunnableSequence.from([prepare, bothModels, visionEnd], 'VqaVision') as RunnableSequence<VqaInput, VisionOutput>;
  }

  /** Streams {@link VqaStreamChunk}s: `vision`, then `answer-delta`s, then `result`. */
  override stream(input: VqaInput, options?: Partial<VqaCallOptions>): Promise<IterableReadableStream<VqaStreamChunk>> {
    return super.stream(input, options);
  }

  protected override async *streamChunks(input: VqaInput, config: Partial<VqaCallOptions>): AsyncGenerator<VqaStreamChunk> {
    const visionOutput = await this.visionPipeline.invoke(input, { ...config, runName: 'VqaVision' });
    const caption = visionOutput.caption.result.caption;
    const candidates = visionOutput.candidates.result.candidates;
    yield { type: 'vision', caption, candidates };
    const answer = traceSteps({
      runName: 'VqaAnswer',
      inputs: { question: visionOutput.prepared.question, caption, candidates },
      config,
      eventName: VQA_ANSWER_DELTA_EVENT,
      eventData: (text: string) => ({ text }),
      steps: (stepConfig) => this.answerSteps(visionOutput, stepConfig),
    });
    const result = yield* mapYields(answer, (text): VqaStreamChunk => ({ type: 'answer-delta', text }));
    yield { type: 'result', result };
  }

  protected override outputOf(chunk: VqaStreamChunk): VqaResult | undefined {
    return chunk.type === 'result' ? chunk.result : undefined;
  }

  // batch() reads its concurrency from the first call's config; the chain's default applies when none is given.
  protected override _getOptionsList<O extends VqaCallOptions & { runType?: string }>(options: Partial<O> | Partial<O>[], length = 0): Partial<O>[] {
    return super._getOptionsList(options, length).map((config) => ({ ...config, maxConcurrency: config.maxConcurrency ?? this.options.maxConcurrency }));
  }

  /** The `VqaAnswer` step: yields the answer's text as it arrives, returns the full result (fallback included). */
  private async *answerSteps(visionOutput: VisionOutput, config: RunnableConfig): AsyncGenerator<string, VqaResult> {
    const { prepared } = visionOutput;
    const caption = visionOutput.caption.result;
    const candidates = visionOutput.candidates.result;
    const { llm } = this.options;
    const llmStart = performance.now();
    let streamed = '';
    let outcome: LlmOutcome;
    if (llm === 'none') {
      outcome = { ok: false, reason: { code: 'llm_disabled', message: 'No LLM is configured; the answer is the top VQA candidate.' } };
    } else {
      const messages = await vqaPromptV1.formatMessages(
        buildVqaPromptValues({
          caption: caption.caption,
          question: prepared.question,
          candidates: candidates.candidates,
          examples: this.options.fewShot,
          history: prepared.history,
        }),
      );
      outcome = yield* mapYields(
        runLlmStep(messages, {
          llm,
          structuredOutput: this.options.structuredOutput,
          timeoutMs: this.options.llmTimeoutMs,
          retries: this.options.llmRetries,
          config,
          breaker: this.options.llmCircuitBreaker,
          backoff: this.options.llmRetryBackoff,
        }),
        (delta) => {
          streamed += delta;
          return delta;
        },
      );
    }
    const llmMs = llm === 'none' ? 0 : performance.now() - llmStart;
    const answered = outcome.ok ? outcome.value : fallbackAnswer(candidates.candidates);
    const matched = matchCandidate(answered.shortAnswer, candidates.candidates);
    const result: VqaResult = {
      answer: answered.answer,
      shortAnswer: answered.shortAnswer,
      question: prepared.question,
      caption: caption.caption,
      candidates: candidates.candidates,
      source: outcome.ok ? 'llm' : 'vqa',
      ...(outcome.ok ? {} : { fallbackReason: outcome.reason }),
      ...(matched ? { matchedCandidate: matched } : {}),
      ...(candidates.warnings ? { warnings: candidates.warnings } : {}),
      cached: { caption: caption.cached, imageEmbeddings: candidates.imageCached },
      timings: {
        prepare: prepared.prepareMs,
        caption: visionOutput.caption.ms,
        candidates: visionOutput.candidates.ms,
        vision: visionOutput.visionMs,
        llm: llmMs,
        total: performance.now() - prepared.startedAt,
        stages: { caption: caption.timings, candidates: candidates.timings },
      },
      models: {
        caption: caption.model,
        vqa: candidates.model,
        llm: llm === 'none' ? null : describeLlm(llm),
        prompt: VQA_PROMPT_VERSION,
      },
      ...(outcome.usage ? { usage: outcome.usage } : {}),
    };
    // The deltas add up to the answer wherever they can: the fallback sentence (no LLM, or an LLM that failed
    // before any text) comes as one delta, as does any rest. Only text an unusable reply already streamed stays
    // provisional: then the answer does not extend it, and the result says what replaces it (as the server does).
    if (result.answer.startsWith(streamed) && result.answer.length > streamed.length) yield result.answer.slice(streamed.length);
    return result;
  }
}

/**
 * Builds the VQA+LLM chain: the image's caption and the question's scored VQA candidates, computed concurrently,
 * go to a text-only LLM that picks the most reasonable answer and says it as one sentence. Any LLM failure falls
 * back to the top candidate (`source: 'vqa'`, `fallbackReason`); only a vision failure or a bad question rejects.
 *
 * @throws {InvalidOptionError} for a bad option, naming it.
 *
 * @example
 * ```ts
 * const vision = await createVisionModels({ modelsDir: 'models', captionModel: 'blip-image-captioning-base', vqaModel: 'vle-base-for-vqa' });
 * const chain = createVqaChain({ vision, llm: createChatModel({ provider: 'openai' }) });
 * const result = await chain.invoke({ image: 'fishing.jpg', question: "What is in the man's hand?" });
 * console.log(result.answer); // "The man in the hat is holding a fishing pole."
 *
 * for await (const chunk of await chain.stream({ image: 'truck.jpg', question: 'How many people are there?' })) {
 *   if (chunk.type === 'answer-delta') process.stdout.write(chunk.text);
 *   if (chunk.type === 'result') console.log('\n', chunk.result.source);
 * }
 * ```
 */
export function createVqaChain(options: VqaChainOptions): VqaChain {
  return new VqaChain(options);
}
