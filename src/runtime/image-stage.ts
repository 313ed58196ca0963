import { performance } from 'node:perf_hooks';
import { decodeImageBytes, hashImageBytes, isLoadedImage, readImageInput } from '../image/load-image.js';
import { trackUncancellable } from '../image/uncancellable-work.js';
import type { ImageBytes } from '../image/read-image-bytes.js';
import type { ImageInput, ImageLimits, LoadedImage, StageTimings } from '../types.js';
import type { EmbeddingCache } from './embedding-cache.js';
import type { Executor } from './executor.js';
import type { TensorData } from './onnx-session.js';
import type { CaptionTask, VqaTask } from './worker-protocol.js';

/** An image whose hash is known, decoded only when some model needs its pixels. */
export interface ImageSource {
  hash: string;
  image?: LoadedImage;
  bytes?: ImageBytes;
  timings: StageTimings;
}

/** Reads the input's bytes and hashes them (`read` stage), without decoding: cached work needs no pixels. */
export async function readSource(input: ImageInput, options: { limits?: ImageLimits; signal?: AbortSignal }): Promise<ImageSource> {
  options.signal?.throwIfAborted();
  if (isLoadedImage(input)) return { hash: input.hash, image: input, timings: {} };
  const started = performance.now();
  const bytes = await readImageInput(input, { ...options.limits, signal: options.signal });
  return { hash: hashImageBytes(bytes.bytes), bytes, timings: { read: performance.now() - started } };
}

/** Validates and decodes the source's bytes (`decode` stage), unless it came decoded. */
export async function decodeSource(source: ImageSource, options: { limits?: ImageLimits; signal?: AbortSignal }): Promise<ImageSource & { image: LoadedImage }> {
  if (source.image) return source as ImageSource & { image: LoadedImage };
  const started = performance.now();
  const image = await decodeImageBytes(source.bytes!.bytes, source.bytes!.source, { ...options.limits, signal: options.signal });
  return { ...source, image, timings: { ...source.timings, decode: performance.now() - started } };
}

/**
 * The image's cached embeddings (the bytes are then never decoded: they were validated when the embeddings were
 * made), or else the decoded image for the worker to preprocess, off the main thread.
 */
export async function embeddingsOrImage(
  source: ImageSource,
  cache: EmbeddingCache,
  options: { limits?: ImageLimits; signal?: AbortSignal },
): Promise<{ image?: LoadedImage; imageEmbeds?: TensorData; timings: StageTimings }> {
  const imageEmbeds = await cache.lookup(source.hash);
  if (imageEmbeds) return { imageEmbeds, timings: source.timings };
  const decoded = await decodeSource(source, options);
  return { image: decoded.image, timings: decoded.timings };
}

/**
 * Runs a task and rejects as soon as `signal` aborts. The worker notices the shared cancel flag between decoder
 * steps (or when its current graph finishes) and drops the rest of the work.
 */
export async function runCancellable<T>(executor: Executor, task: CaptionTask | VqaTask, signal?: AbortSignal): Promise<T> {
  signal?.throwIfAborted();
  if (!signal) return executor.run<T>(task);
  const cancel = new SharedArrayBuffer(4);
  // Tracked: a graph already running in the worker finishes before the cancel flag is seen; a server holds the
  // request's slot until then.
  // The signal too: a run still waiting for its cores (the core budget) leaves that queue at once on abort.
  const running = trackUncancellable(executor.run<T>({ ...task, cancel }, { signal }));
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
