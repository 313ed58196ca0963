import { performance } from 'node:perf_hooks';
import { InvalidQuestionError } from '../errors/invalid-question-error.js';
import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import type { Candidate, CandidatesOptions, CandidatesResult, FloatTensor, ImageInput, LoadedImage, StageTimings, VqaWarning } from '../types.js';
import type { TensorData } from './onnx-session.js';
import { embeddingsOrImage, readSource, runCancellable } from './image-stage.js';
import { configNumber } from './model-loader.js';
import { checkInteger, openModel, VisionModelBase, type OpenedModel, type VisionModelOptions } from './vision-model-base.js';
import { softmax, topKIndices } from './tensor-ops.js';
import type { VqaTaskResult } from './worker-protocol.js';

export const DEFAULT_TOP_K = 5;

/**
 * VLE visual question answering: the top-k answers with softmax scores, as the upstream VLE pipeline reports
 * them. Image embeddings are cached per image, so a second question about the same image runs only the fusion graph.
 *
 * @example
 * const vqa = await VleVqa.load('models-data/vle-base-for-vqa');
 * const { candidates } = await vqa.candidates('dogs.jpg', 'How many dogs are there?', { topK: 3 });
 */
export class VleVqa extends VisionModelBase {
  /**
   * How the fusion graph runs: as two parts, the image part's outputs (`handoff`) cached per image in each worker,
   * or whole, and why (`fusionCacheBytes: 0`, a graph file over 256 MiB, a graph with nothing to cut). With
   * `workers` over 1 this is the first worker's; the others open the same files the same way on their first question.
   */
  readonly fusionImageCache: { handoff: readonly string[] } | { whole: string };

  private constructor(
    opened: OpenedModel,
    private readonly labels: string[],
    private readonly questionTokens: QuestionTokenLimits,
    options: VisionModelOptions,
  ) {
    super(opened, options);
    this.fusionImageCache = opened.loaded.fusionSplit ?? { whole: opened.loaded.fusionWhole ?? 'no fusion graph' };
  }

  /**
   * Prefixes the image key of the workers' fusion image-state cache: `clearCache` moves to a new one, so nothing
   * cached before is used again (the old entries age out of the workers' bounded caches).
   */
  private imageStateGeneration = 0;

  /**
   * Drops what is cached per image: here at once; in the workers by moving to a new cache key, so nothing cached
   * before is used again (those entries stay in memory, within `fusionCacheBytes`, until newer ones evict them).
   */
  override clearCache(): void {
    super.clearCache();
    this.imageStateGeneration += 1;
  }

  /** Every answer the classifier knows, by label id. */
  get answers(): readonly string[] {
    return this.labels;
  }

  static async load(folder: string, options: VisionModelOptions = {}): Promise<VleVqa> {
    const opened = await openModel(folder, 'vle-vqa', options);
    const source = `${folder}/config.json`;
    try {
      const labels = readLabels(opened.model.config, source);
      return new VleVqa(opened, labels, readQuestionTokenLimits(opened.model.config, source), options);
    } catch (error) {
      if (opened.ownsExecutor) await opened.executor.destroy();
      throw error;
    }
  }

  /** The top-k answers for a question about an image. */
  async candidates(image: ImageInput, question: string, options: CandidatesOptions = {}): Promise<CandidatesResult> {
    const started = performance.now();
    const topK = options.topK ?? DEFAULT_TOP_K;
    checkInteger('topK', topK, 1, this.labels.length);
    const inputIds = this.tokenize(question, { truncate: options.truncateQuestion });
    const imageOptions = { limits: this.options.imageLimits, signal: options.signal };
    const source = await readSource(image, imageOptions);
    const stage = await embeddingsOrImage(source, this.embeddings, imageOptions);
    const result = await this.answer(stage, inputIds, topK, options.signal, started, `${this.imageStateGeneration}:${source.hash}`);
    if (result.imageEmbeds) await this.embeddings.store(source.hash, result.imageEmbeds);
    delete result.imageEmbeds;
    const imageCached = stage.imageEmbeds !== undefined || result.imageCached;
    return { ...result, imageCached, ...this.warningsFor(inputIds) };
  }

  /** Candidates for already preprocessed pixels (`[1, 3, H, W]`). Nothing is cached. */
  async candidatesForPixels(pixelValues: FloatTensor, question: string, options: CandidatesOptions = {}): Promise<CandidatesResult> {
    const started = performance.now();
    const topK = options.topK ?? DEFAULT_TOP_K;
    checkInteger('topK', topK, 1, this.labels.length);
    const inputIds = this.tokenize(question, { truncate: options.truncateQuestion });
    const result = await this.answer({ pixelValues: { type: 'float32', data: pixelValues.data, dims: [...pixelValues.dims] }, timings: {} }, inputIds, topK, options.signal, started);
    delete result.imageEmbeds;
    return { ...result, ...this.warningsFor(inputIds) };
  }

  private async answer(
    stage: { image?: LoadedImage; pixelValues?: TensorData; imageEmbeds?: TensorData; timings: StageTimings },
    inputIds: number[],
    topK: number,
    signal: AbortSignal | undefined,
    started: number,
    imageKey?: string,
  ): Promise<CandidatesResult & { imageEmbeds?: TensorData }> {
    const result = await runCancellable<VqaTaskResult>(
      this.executor,
      {
        type: 'vqa',
        model: this.model.spec,
        image: stage.image,
        pixelValues: stage.pixelValues,
        imageEmbeds: stage.imageEmbeds,
        inputIds,
        attentionMask: inputIds.map(() => 1),
        imageKey,
      },
      signal,
    );
    const probabilities = softmax(result.logits);
    const candidates: Candidate[] = topKIndices(probabilities, topK).map((index) => ({ answer: this.labels[index]!, score: probabilities[index]! }));
    return {
      candidates,
      imageCached: result.imageStateCached === true,
      timings: {
        ...stage.timings,
        ...(result.timings.preprocess === undefined ? {} : { preprocess: result.timings.preprocess }),
        ...(result.timings.vision === undefined ? {} : { vision: result.timings.vision }),
        fusion: result.timings.fusion,
        ...(result.timings.fusionImage === undefined ? {} : { fusionImage: result.timings.fusionImage }),
        total: performance.now() - started,
      },
      model: this.name,
      imageEmbeds: result.imageEmbeds,
    };
  }

  /**
   * `[CLS] question [SEP]` ids. Like upstream's VLEForVQAPipeline, a question runs whole as long as the text
   * tower's position range (`text_config.max_position_embeddings`) allows; past that it is refused, unless
   * `truncate` is set, which keeps the first tokens up to the fine-tuning length and the final `[SEP]`.
   */
  tokenize(question: string, options: { truncate?: boolean } = {}): number[] {
    if (typeof question !== 'string' || question.trim() === '') {
      throw new InvalidQuestionError('empty', 'The question is empty.', { hint: 'Ask something about the image.' });
    }
    const { fineTuning, maximum } = this.questionTokens;
    if (options.truncate) return this.model.tokenizer.encode(question.trim(), { addSpecialTokens: true, maxLength: fineTuning });
    const ids = this.model.tokenizer.encode(question.trim(), { addSpecialTokens: true });
    if (ids.length > maximum) {
      throw new InvalidQuestionError(
        'too_long',
        `The question is ${ids.length} tokens long; ${this.name} accepts at most ${maximum} (its text positions, special tokens included).`,
        { hint: `Shorten the question, or pass truncateQuestion: true to cut it to the ${fineTuning} tokens the model was fine-tuned on.` },
      );
    }
    return ids;
  }

  /** A question longer than the fine-tuning questions runs as upstream runs it, with a warning in the result. */
  private warningsFor(inputIds: number[]): { warnings?: VqaWarning[] } {
    const { fineTuning } = this.questionTokens;
    if (inputIds.length <= fineTuning) return {};
    return {
      warnings: [
        {
          code: 'question_longer_than_fine_tuning',
          message: `The question is ${inputIds.length} tokens long; ${this.name} was fine-tuned on questions of at most ${fineTuning}, so its answers may be less reliable.`,
        },
      ],
    };
  }
}

interface QuestionTokenLimits {
  /** The fine-tuning length (`max_question_tokens`, 50 for the real checkpoints): information, not a limit. */
  fineTuning: number;
  /** The text tower's position range: what the model can run at all. */
  maximum: number;
}

function readQuestionTokenLimits(config: Record<string, unknown>, source: string): QuestionTokenLimits {
  const text = config.text_config;
  if (typeof text !== 'object' || text === null) {
    throw new ModelIntegrityError('bad_manifest', `${source} has no "text_config".`, { hint: 'Export the model folder again with `vqa-llm models export`.' });
  }
  return {
    fineTuning: configNumber(config, 'max_question_tokens', source),
    maximum: configNumber(text as Record<string, unknown>, 'max_position_embeddings', `${source} text_config`),
  };
}

function readLabels(config: Record<string, unknown>, source: string): string[] {
  const id2label = config.id2label;
  if (typeof id2label !== 'object' || id2label === null) {
    throw new ModelIntegrityError('bad_manifest', `${source} has no "id2label".`, { hint: 'Export the model folder again with `vqa-llm models export`.' });
  }
  const entries = Object.entries(id2label as Record<string, unknown>);
  const labels = new Array<string>(entries.length);
  for (const [key, value] of entries) {
    const index = Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= entries.length || typeof value !== 'string') {
      throw new ModelIntegrityError('bad_manifest', `${source} has a bad id2label entry ${JSON.stringify(key)}: ${JSON.stringify(value)}.`);
    }
    labels[index] = value;
  }
  return labels;
}
