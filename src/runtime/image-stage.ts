import { performance } from 'node:perf_hooks';
import { loadImage } from '../image/load-image.js';
import type { ImageInput, ImageLimits, LoadedImage, StageTimings } from '../types.js';
import type { EmbeddingCache } from './embedding-cache.js';
import type { Executor } from './executor.js';
import type { TensorData } from './onnx-session.js';
import type { CaptionTask, VqaTask } from './worker-protocol.js';

export interface ImageStage {
  image: LoadedImage;
  /** Present when this image's embeddings were cached: the vision graph is skipped. */
  imageEmbeds?: TensorData;
  /** Otherwise the worker preprocesses `image` and runs the vision graph. */
  pixelsFromImage?: true;
  timings: StageTimings;
}

/** Loads and validates the image, timing it as the `decode` stage. */
export async function loadTimed(input: ImageInput, options: { limits?: ImageLimits; signal?: AbortSignal }): Promise<{ image: LoadedImage; timings: StageTimings }> {
  options.signal?.throwIfAborted();
  const started = performance.now();
  const image = await loadImage(input, { ...options.limits, signal: options.signal });
  return { image, timings: { decode: performance.now() - started } };
}

/**
 * The image's cached embeddings, or else the image itself for the worker to preprocess (preprocessing is CPU work
 * that stays off the main thread).
 */
export function embeddingsOrImage(loaded: { image: LoadedImage; timings: StageTimings }, cache: EmbeddingCache): ImageStage {
  const imageEmbeds = cache.get(loaded.image.hash);
  return imageEmbeds ? { ...loaded, imageEmbeds } : { ...loaded, pixelsFromImage: true };
}

/**
 * Runs a task and rejects as soon as `signal` aborts. The worker notices the shared cancel flag between decoder
 * steps (or when its current graph finishes) and drops the rest of the work.
 */
export async function runCancellable<T>(executor: Executor, task: CaptionTask | VqaTask, signal?: AbortSignal): Promise<T> {
  signal?.throwIfAborted();
  if (!signal) return executor.run<T>(task);
  const cancel = new SharedArrayBuffer(4);
  const running = executor.run<T>({ ...task, cancel });
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      Atomics.store(new Int32Array(cancel), 0, 1);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    running.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}
