import { availableParallelism } from 'node:os';
import { LRUCache } from 'lru-cache';
import { DEFAULT_CAPTION_MODEL, DEFAULT_VQA_MODEL } from '../models/defaults.js';
import { resolveModel } from '../models/resolve-model.js';
import type { ImageInput, ImageLimits, LoadedImage, ProgressCallback, VisionModels } from '../types.js';
import { BlipCaptioner } from './blip-captioner.js';
import type { VisionModelOptions } from './vision-model-base.js';
import { VleVqa } from './vle-vqa.js';
import { decodeSource, readSource } from './image-stage.js';

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
  /** onnxruntime threads per model. Default: the machine's cores shared between the two models. */
  threads?: number;
  /** Worker threads per model; 0 runs inference on the calling thread. Default 1. */
  workers?: number;
  quantized?: boolean;
  embeddingCacheBytes?: number;
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
}

/**
 * Loads the captioner and the VQA model side by side (each in its own worker pool, so they run concurrently).
 *
 * @example
 * const vision = await createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle' });
 * const image = await vision.loadImage('photo.jpg');
 * const [caption, answers] = await Promise.all([vision.caption(image), vision.candidates(image, 'What is this?')]);
 * await vision.dispose();
 */
export async function createVisionModels(options: VisionModelsOptions = {}): Promise<VisionModels & { captioner: BlipCaptioner; vqa: VleVqa; clearCache(): void }> {
  const resolveOptions = { modelsDir: options.modelsDir, onProgress: options.onProgress, offline: options.offline, signal: options.signal };
  const [captionFolder, vqaFolder] = await Promise.all([
    resolveModel(options.captionModel ?? DEFAULT_CAPTION_MODEL, resolveOptions),
    resolveModel(options.vqaModel ?? DEFAULT_VQA_MODEL, resolveOptions),
  ]);
  const workers = options.workers ?? 1;
  const modelOptions: VisionModelOptions = {
    workers,
    threads: options.threads ?? Math.max(1, Math.floor(availableParallelism() / (2 * Math.max(1, workers)))),
    quantized: options.quantized,
    embeddingCacheBytes: options.embeddingCacheBytes,
    imageLimits: options.imageLimits,
    verifyChecksums: options.verifyChecksums,
  };
  options.onProgress?.({ status: 'start', task: 'load-models' });
  const [captioner, vqa] = await Promise.allSettled([BlipCaptioner.load(captionFolder, modelOptions), VleVqa.load(vqaFolder, modelOptions)]);
  if (captioner.status === 'rejected' || vqa.status === 'rejected') {
    // Do not leak the worker threads of the half that did load.
    if (captioner.status === 'fulfilled') await captioner.value.dispose();
    if (vqa.status === 'fulfilled') await vqa.value.dispose();
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
    },
  };
}
