import { availableParallelism } from 'node:os';
import { LRUCache } from 'lru-cache';
import { DEFAULT_CAPTION_MODEL, DEFAULT_VQA_MODEL } from '../models/defaults.js';
import { resolveModel } from '../models/resolve-model.js';
import type { ImageInput, ImageLimits, LoadedImage, ProgressCallback, VisionModels } from '../types.js';
import { createSharedImageCache, type SharedImageCache } from '../distributed/shared-image-cache.js';
import { BlipCaptioner } from './blip-captioner.js';
import type { VisionModelOptions } from './vision-model-base.js';
import { VleVqa } from './vle-vqa.js';
import { decodeSource, readSource } from './image-stage.js';
import { CoreBudget, sharedCoreBudget } from './core-budget.js';
import { InvalidOptionError } from '../errors/invalid-option-error.js';

/**
 * How far ahead of earlier-queued caption runs a VQA run goes: enough to cover the milliseconds between a
 * question's two calls, far less than a run lasts, so under load runs still start roughly in arrival order.
 */
const VQA_RUN_LEAD_MS = 50;

export interface VisionModelsOptions {
  /** Folder holding model folders looked up by name (default: `VQA_LLM_MODELS`, else the per-user data folder). */
  modelsDir?: string;
  /**
   * Caption model: a folder name under `modelsDir`, a path, or a hub id `owner/name[@revision]` (an upstream BLIP
   * checkpoint is downloaded and converted on first use, a published vqa-llm folder downloaded). Default
   * `Salesforce/blip-image-captioning-base`.
   */
  captionModel?: string;
  /** VQA model, likewise. Default `hfl/vle-base-for-vqa`. */
  vqaModel?: string;
  /**
   * Cores the vision models may use together (the process's share of the machine), in a budget of their own.
   * Default: the process's budget, `sharedCoreBudget()` (`os.availableParallelism()` cores), which the embedded LLM
   * draws from too.
   */
  cores?: number;
  /** The budget to draw cores from under `'budget'` scheduling (share one with other models). Default: see `cores`. */
  coreBudget?: CoreBudget;
  /**
   * How the two models share the cores. `'budget'` (default): every graph runs on all `cores`, and a run starts
   * only when its cores are free, so one question's VQA runs first on every core and its caption after it, and
   * concurrent questions queue instead of oversubscribing the machine. `'split'`: each model has its own
   * `cores / 2` threads and runs whenever asked (what 0.1 did).
   */
  scheduling?: 'budget' | 'split';
  /** onnxruntime threads per model. Default: `cores` with `'budget'` scheduling, `cores / 2` with `'split'`. */
  threads?: number;
  /** onnxruntime settings beyond threads (spin-waiting, memory arena, memory patterns), for tuning. */
  sessionOptions?: VisionModelOptions['sessionOptions'];
  /**
   * Worker threads per model; 0 runs inference on the calling thread. Default 1. Each worker holds its own copy of
   * the model's sessions; under `'budget'` scheduling more workers add memory, not speed.
   */
  workers?: number;
  quantized?: boolean;
  embeddingCacheBytes?: number;
  /** VLE: each worker's cache of the fusion graph's image part, in bytes (see VisionModelOptions). Default 64 MiB; 0 off. */
  fusionCacheBytes?: number;
  /**
   * Budget in bytes for decoded images kept by `loadImage`, so a chatbot's follow-up question that sends the same
   * image again skips the decode. Default 64 MiB (a 12-megapixel photo is 36 MiB decoded); 0 turns it off.
   */
  decodedImageCacheBytes?: number;
  imageLimits?: ImageLimits;
  verifyChecksums?: boolean;
  /** Download and loading progress. */
  onProgress?: ProgressCallback;
  /** Never download: local folders and the cache only. Default: `VQA_LLM_OFFLINE`. */
  offline?: boolean;
  signal?: AbortSignal;
  /**
   * Share captions and image embeddings with other processes through Redis: a `redis://` URL (closed by
   * `dispose`) or a cache from `createSharedImageCache` (left open). Default: none, each process caches alone.
   */
  cache?: string | SharedImageCache;
}

/**
 * Loads the captioner and the VQA model side by side, each in its own worker pool, drawing their cores from one
 * budget (see docs/performance.md).
 *
 * @example
 * const vision = await createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle' });
 * const image = await vision.loadImage('photo.jpg');
 * const [caption, answers] = await Promise.all([vision.caption(image), vision.candidates(image, 'What is this?')]);
 * await vision.dispose();
 */
export async function createVisionModels(options: VisionModelsOptions = {}): Promise<VisionModels & { captioner: BlipCaptioner; vqa: VleVqa; coreBudget?: CoreBudget; clearCache(): void }> {
  // Checked before anything is resolved or downloaded.
  const scheduling = options.scheduling ?? 'budget';
  if (scheduling !== 'budget' && scheduling !== 'split') throw new InvalidOptionError('invalid_value', `scheduling must be 'budget' or 'split', got ${String(scheduling)}.`);
  // When one model cannot be had, the other's download or conversion stops too: minutes of work for nothing, and a
  // CLI that would stay alive until it ended.
  const sibling = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, sibling.signal]) : sibling.signal;
  const resolveOptions = { modelsDir: options.modelsDir, onProgress: options.onProgress, offline: options.offline, signal };
  const stopSibling = (error: unknown): never => {
    sibling.abort(error);
    throw error;
  };
  const [captionFolder, vqaFolder] = await Promise.all([
    resolveModel(options.captionModel ?? DEFAULT_CAPTION_MODEL, resolveOptions).catch(stopSibling),
    resolveModel(options.vqaModel ?? DEFAULT_VQA_MODEL, resolveOptions).catch(stopSibling),
  ]);
  const workers = options.workers ?? 1;
  const sharedCache = typeof options.cache === 'string' ? createSharedImageCache({ url: options.cache }) : options.cache;
  const closeSharedCache = async (): Promise<void> => {
    if (typeof options.cache === 'string') await sharedCache?.close();
  };
  const cores = options.coreBudget?.cores ?? options.cores ?? availableParallelism();
  // One budget per process unless told otherwise: a local LLM in the same process then takes turns with the graphs.
  const coreBudget = scheduling !== 'budget' ? undefined : (options.coreBudget ?? (options.cores === undefined ? sharedCoreBudget() : new CoreBudget({ cores })));
  const modelOptions: VisionModelOptions = {
    workers,
    threads: options.threads ?? (coreBudget ? cores : Math.max(1, Math.floor(cores / (2 * Math.max(1, workers))))),
    coreBudget,
    sessionOptions: options.sessionOptions,
    quantized: options.quantized,
    embeddingCacheBytes: options.embeddingCacheBytes,
    fusionCacheBytes: options.fusionCacheBytes,
    imageLimits: options.imageLimits,
    verifyChecksums: options.verifyChecksums,
    sharedCache,
  };
  options.onProgress?.({ status: 'start', task: 'load-models' });
  // Connects while the models load, so the first answers already share (an unreachable Redis only means misses).
  const sharedCacheReady = sharedCache?.ready();
  // Both load at once; in the budget's queue a question's VQA run goes ahead of the caption run queued with it.
  const [captioner, vqa] = await Promise.allSettled([
    BlipCaptioner.load(captionFolder, modelOptions),
    VleVqa.load(vqaFolder, { ...modelOptions, runLeadMs: VQA_RUN_LEAD_MS }),
  ]);
  await sharedCacheReady;
  if (captioner.status === 'rejected' || vqa.status === 'rejected') {
    // Do not leak the worker threads of the half that did load.
    if (captioner.status === 'fulfilled') await captioner.value.dispose();
    if (vqa.status === 'fulfilled') await vqa.value.dispose();
    await closeSharedCache();
    throw captioner.status === 'rejected' ? captioner.reason : (vqa as PromiseRejectedResult).reason;
  }
  options.onProgress?.({ status: 'ready', task: 'load-models' });
  const imageLimits = options.imageLimits;
  const decodedBudget = options.decodedImageCacheBytes ?? 64 * 1024 * 1024;
  const decoded = decodedBudget > 0 ? new LRUCache<string, LoadedImage>({ maxSize: decodedBudget, sizeCalculation: (image) => Math.max(1, image.data.byteLength) }) : undefined;
  const loadImage = async (input: ImageInput, callOptions: { signal?: AbortSignal } = {}): Promise<LoadedImage> => {
    const imageOptions = { limits: imageLimits, signal: callOptions.signal };
    const source = await readSource(input, imageOptions);
    const hit = decoded?.get(source.hash);
    if (hit) return hit;
    const { image } = await decodeSource(source, imageOptions);
    if (image.data.byteLength <= decodedBudget) decoded?.set(image.hash, image);
    return image;
  };
  return {
    captioner: captioner.value,
    vqa: vqa.value,
    ...(coreBudget ? { coreBudget } : {}),
    models: { caption: captioner.value.name, vqa: vqa.value.name },
    loadImage,
    caption: (image, callOptions) => captioner.value.caption(image, callOptions),
    candidates: (image, question, callOptions) => vqa.value.candidates(image, question, callOptions),
    clearCache: () => {
      decoded?.clear();
      captioner.value.clearCache();
      vqa.value.clearCache();
    },
    dispose: async () => {
      decoded?.clear();
      await Promise.all([captioner.value.dispose(), vqa.value.dispose()]);
      await closeSharedCache();
    },
  };
}
