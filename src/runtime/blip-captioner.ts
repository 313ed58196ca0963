import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import type { CaptionOptions, CaptionResult, FloatTensor, ImageInput, ImageLimits, LoadedImage, StageTimings } from '../types.js';
import type { TensorData } from './onnx-session.js';
import { EmbeddingCache } from './embedding-cache.js';
import { createExecutor, defaultThreadsPerWorker, type Executor } from './executor.js';
import { embeddingsOrImage, readSource, runCancellable } from './image-stage.js';
import { configNumber, loadModelFolder, readJson, type LoadedModelFolder } from './model-loader.js';
import type { CaptionTaskResult } from './worker-protocol.js';

export interface VisionModelOptions {
  /** Worker threads for this model; 0 runs inference on the calling thread. Default 1. */
  workers?: number;
  /** onnxruntime threads per worker. Default: the machine's cores shared among all workers. */
  threads?: number;
  /** Use int8 graphs where the folder has them. */
  quantized?: boolean;
  /** Budget of the per-image embedding cache in bytes. Default 256 MiB. */
  embeddingCacheBytes?: number;
  /** Limits applied when images are loaded. */
  imageLimits?: ImageLimits;
  /** Re-hash every file against the manifest before loading. Default false (sizes are always checked). */
  verifyChecksums?: boolean;
  /** Run inference on this executor instead of creating one (it is not destroyed by `dispose`). */
  executor?: Executor;
}

interface GenerationConfig {
  bosTokenId: number;
  eosTokenId: number;
  maxLength: number;
  minLength: number;
  numBeams: number;
  repetitionPenalty: number;
}

const defaultEmbeddingCacheBytes = 256 * 1024 * 1024;

/**
 * BLIP image captioning on onnxruntime-node, from a model folder the exporter wrote.
 *
 * @example
 * const captioner = await BlipCaptioner.load('models-data/blip-image-captioning-base');
 * const { caption } = await captioner.caption('photo.jpg', { numBeams: 3 });
 * await captioner.dispose();
 */
export class BlipCaptioner {
  private readonly embeddings: EmbeddingCache;
  private readonly captions = new LRUCache<string, CaptionResult>({ max: 1024 });

  private constructor(
    private readonly model: LoadedModelFolder,
    private readonly generation: GenerationConfig,
    private readonly executor: Executor,
    private readonly ownsExecutor: boolean,
    private readonly options: VisionModelOptions,
  ) {
    this.embeddings = new EmbeddingCache(options.embeddingCacheBytes ?? defaultEmbeddingCacheBytes);
  }

  /** The model's name from its manifest. */
  get name(): string {
    return this.model.manifest.name;
  }

  get folder(): string {
    return this.model.folder;
  }

  static async load(folder: string, options: VisionModelOptions = {}): Promise<BlipCaptioner> {
    const workers = options.workers ?? 1;
    const model = await loadModelFolder(folder, 'blip-captioner', {
      quantized: options.quantized,
      verifyChecksums: options.verifyChecksums,
      session: { intraOpNumThreads: options.threads ?? defaultThreadsPerWorker(workers) },
    });
    const source = `${folder}/generation_config.json`;
    const json = (await readJson(folder, 'generation_config.json')) as Record<string, unknown>;
    const generation: GenerationConfig = {
      bosTokenId: configNumber(json, 'bos_token_id', source),
      eosTokenId: configNumber(json, 'eos_token_id', source),
      maxLength: configNumber(json, 'max_length', source),
      minLength: configNumber(json, 'min_length', source),
      numBeams: configNumber(json, 'num_beams', source),
      repetitionPenalty: configNumber(json, 'repetition_penalty', source),
    };
    const executor = options.executor ?? createExecutor({ workers });
    const captioner = new BlipCaptioner(model, generation, executor, !options.executor, options);
    // Open the sessions now, so the first caption does not pay for it and a broken graph fails at load time.
    await executor.run({ type: 'load', model: model.spec });
    return captioner;
  }

  /** Captions an image. Results and image embeddings are cached per image bytes. */
  async caption(image: ImageInput, options: CaptionOptions = {}): Promise<CaptionResult> {
    const started = performance.now();
    const promptIds = this.promptIds(options.prefix);
    const search = this.searchOptions(options, promptIds.length);
    const imageOptions = { limits: this.options.imageLimits, signal: options.signal };
    const source = await readSource(image, imageOptions);
    const cacheKey = `${source.hash}|${JSON.stringify([options.prefix ?? '', search])}`;
    const cached = this.captions.get(cacheKey);
    if (cached) return { ...cached, cached: true, timings: { ...source.timings, total: performance.now() - started } };
    const stage = await embeddingsOrImage(source, this.embeddings, imageOptions);

    const caption = await this.generate(stage, promptIds, search, options.signal, started);
    if (caption.imageEmbeds) this.embeddings.set(source.hash, caption.imageEmbeds);
    delete caption.imageEmbeds;
    this.captions.set(cacheKey, caption);
    return caption;
  }

  /**
   * Captions already preprocessed pixels (`[1, 3, H, W]`, as `preprocessor_config.json` describes). Nothing is
   * cached: there are no image bytes to key on.
   */
  async captionPixels(pixelValues: FloatTensor, options: CaptionOptions = {}): Promise<CaptionResult> {
    const started = performance.now();
    const promptIds = this.promptIds(options.prefix);
    const search = this.searchOptions(options, promptIds.length);
    const caption = await this.generate({ pixelValues: { type: 'float32', data: pixelValues.data, dims: [...pixelValues.dims] }, timings: {} }, promptIds, search, options.signal, started);
    delete caption.imageEmbeds;
    return caption;
  }

  private async generate(
    stage: { image?: LoadedImage; pixelValues?: TensorData; imageEmbeds?: TensorData; timings: StageTimings },
    promptIds: number[],
    search: ReturnType<BlipCaptioner['searchOptions']>,
    signal: AbortSignal | undefined,
    started: number,
  ): Promise<CaptionResult & { imageEmbeds?: TensorData }> {
    const result = await runCancellable<CaptionTaskResult>(
      this.executor,
      {
        type: 'caption',
        model: this.model.spec,
        image: stage.image,
        pixelValues: stage.pixelValues,
        imageEmbeds: stage.imageEmbeds,
        search: { ...search, promptIds, eosTokenId: this.generation.eosTokenId },
      },
      signal,
    );
    return {
      caption: this.decode(promptIds, result.tokenIds),
      tokenIds: result.tokenIds,
      cached: false,
      timings: {
        ...stage.timings,
        ...(result.timings.preprocess === undefined ? {} : { preprocess: result.timings.preprocess }),
        ...(result.timings.vision === undefined ? {} : { vision: result.timings.vision }),
        crossAttention: result.timings.crossAttention,
        decoder: result.timings.decoder,
        total: performance.now() - started,
      },
      model: this.name,
      imageEmbeds: result.imageEmbeds,
    };
  }

  /** Prompt ids: `[bos]`, or the prefix's ids with `[CLS]` replaced by bos and the trailing `[SEP]` dropped. */
  promptIds(prefix?: string): number[] {
    if (!prefix || prefix.trim() === '') return [this.generation.bosTokenId];
    const ids = this.model.tokenizer.encode(prefix.trim(), { addSpecialTokens: true });
    return [this.generation.bosTokenId, ...ids.slice(1, -1)];
  }

  private decode(promptIds: number[], tokenIds: number[]): string {
    const vocabulary = this.model.tokenizer.vocabSize;
    // [DEC] and [ENC] exist only in the decoder's vocabulary, not in the tokenizer's.
    const keep = (id: number): boolean => id < vocabulary && id !== this.generation.eosTokenId;
    const prefixIds = promptIds.slice(1).filter(keep);
    const text = this.model.tokenizer.decode([...prefixIds, ...tokenIds.filter(keep)], { skipSpecialTokens: true }).trim();
    if (prefixIds.length === 0) return text;
    const prefixText = this.model.tokenizer.decode(prefixIds, { skipSpecialTokens: true }).trim();
    return text.startsWith(prefixText) ? text.slice(prefixText.length).trim() : text;
  }

  private searchOptions(options: CaptionOptions, promptLength: number) {
    const numBeams = options.numBeams ?? this.generation.numBeams;
    const maxNewTokens = options.maxNewTokens ?? Math.max(1, this.generation.maxLength - promptLength);
    const minNewTokens = options.minNewTokens ?? Math.max(0, this.generation.minLength - promptLength);
    const repetitionPenalty = options.repetitionPenalty ?? this.generation.repetitionPenalty;
    checkInteger('numBeams', numBeams, 1, 16);
    checkInteger('maxNewTokens', maxNewTokens, 1, 512);
    checkInteger('minNewTokens', minNewTokens, 0, maxNewTokens);
    if (!(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty)) {
      throw new InvalidOptionError('invalid_value', `repetitionPenalty must be a positive number, got ${repetitionPenalty}.`);
    }
    return { numBeams, maxNewTokens, minNewTokens, repetitionPenalty };
  }

  /** Drops cached captions and embeddings. */
  clearCache(): void {
    this.captions.clear();
    this.embeddings.clear();
  }

  async dispose(): Promise<void> {
    this.clearCache();
    if (this.ownsExecutor) await this.executor.destroy();
  }
}

export function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError('invalid_value', `${name} must be an integer from ${min} to ${max}, got ${value}.`);
  }
}
