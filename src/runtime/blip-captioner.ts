import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import type { CaptionOptions, CaptionResult, FloatTensor, ImageInput, LoadedImage, StageTimings } from '../types.js';
import type { TensorData } from './onnx-session.js';
import { embeddingsOrImage, readSource, runCancellable } from './image-stage.js';
import { checkModelFolder, readModelJson } from '../models/manifest.js';
import { configNumber } from './model-loader.js';
import { checkInteger, openModel, VisionModelBase, type OpenedModel, type VisionModelOptions } from './vision-model-base.js';
import type { CaptionTaskResult } from './worker-protocol.js';

interface GenerationConfig {
  bosTokenId: number;
  eosTokenId: number;
  maxLength: number;
  /** When set, the default number of new tokens whatever the prompt's length (it wins over maxLength, as in transformers). */
  maxNewTokens?: number;
  minLength: number;
  numBeams: number;
  repetitionPenalty: number;
}

/**
 * BLIP image captioning on onnxruntime-node, from a model folder the exporter wrote.
 *
 * @example
 * const captioner = await BlipCaptioner.load('models-data/blip-image-captioning-base');
 * const { caption } = await captioner.caption('photo.jpg', { numBeams: 3 });
 * await captioner.dispose();
 */
export class BlipCaptioner extends VisionModelBase {
  private readonly captions = new LRUCache<string, CaptionResult>({ max: 1024 });

  private constructor(
    opened: OpenedModel,
    private readonly generation: GenerationConfig,
    options: VisionModelOptions,
  ) {
    super(opened, options);
  }

  static async load(folder: string, options: VisionModelOptions = {}): Promise<BlipCaptioner> {
    // The kind first: a VQA folder given as the caption model is told so, not that a BLIP file is missing from it.
    await checkModelFolder(folder, { kind: 'blip-captioner' });
    const source = `${folder}/generation_config.json`;
    const json = await readModelJson(folder, 'generation_config.json');
    const generation: GenerationConfig = {
      bosTokenId: configNumber(json, 'bos_token_id', source),
      eosTokenId: configNumber(json, 'eos_token_id', source),
      maxLength: configNumber(json, 'max_length', source),
      ...(typeof json.max_new_tokens === 'number' ? { maxNewTokens: configNumber(json, 'max_new_tokens', source) } : {}),
      minLength: configNumber(json, 'min_length', source),
      numBeams: configNumber(json, 'num_beams', source),
      repetitionPenalty: configNumber(json, 'repetition_penalty', source),
    };
    return new BlipCaptioner(await openModel(folder, 'blip-captioner', options), generation, options);
  }

  /** Captions an image. Results and image embeddings are cached per image bytes. */
  async caption(image: ImageInput, options: CaptionOptions = {}): Promise<CaptionResult> {
    const started = performance.now();
    const promptIds = this.promptIds(options.prefix);
    const search = this.searchOptions(options, promptIds.length);
    const imageOptions = { limits: this.options.imageLimits, signal: options.signal };
    const source = await readSource(image, imageOptions);
    const cacheKey = `${source.hash}|${JSON.stringify([options.prefix ?? '', search])}`;
    const cached = this.captions.get(cacheKey) ?? (await this.sharedCaption(cacheKey));
    if (cached) return { ...cached, cached: true, timings: { ...source.timings, total: performance.now() - started } };
    const stage = await embeddingsOrImage(source, this.embeddings, imageOptions);

    const caption = await this.generate(stage, promptIds, search, options.signal, started);
    if (caption.imageEmbeds) await this.embeddings.store(source.hash, caption.imageEmbeds);
    delete caption.imageEmbeds;
    this.captions.set(cacheKey, caption);
    await this.options.sharedCache?.setCaption(this.modelId, cacheKey, caption);
    return caption;
  }

  /** A caption another process made for the same model, image and settings; kept locally too. */
  private async sharedCaption(cacheKey: string): Promise<CaptionResult | undefined> {
    const shared = await this.options.sharedCache?.getCaption(this.modelId, cacheKey);
    if (!shared) return undefined;
    const caption: CaptionResult = { caption: shared.caption, tokenIds: shared.tokenIds, cached: true, timings: {}, model: this.name };
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
    const maxNewTokens = options.maxNewTokens ?? this.generation.maxNewTokens ?? Math.max(1, this.generation.maxLength - promptLength);
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
  override clearCache(): void {
    this.captions.clear();
    super.clearCache();
  }
}
