// VLE's fusion graph run as two parts, with the image part's results cached per image in the worker that holds the
// sessions (issue 14, item 2). A follow-up question about a cached image runs only the text part.
import { readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { LRUCache } from 'lru-cache';
import { splitImageWork } from './fusion-split.js';
import { OnnxGraph, type GraphSessionOptions, type TensorData } from './onnx-session.js';
import type { GraphFile } from './worker-protocol.js';

/** The fusion graph's image input: image embeddings from the image encoder. */
const IMAGE_INPUTS = ['image_embeds'];

/**
 * Graph files larger than this are loaded whole. The split decodes the .onnx on the worker thread, which is cheap
 * when the weights live in a `.onnx.data` file (the converter's folders; the exporter's above 64 MiB), and would
 * hold a second copy of the weights when they are inside it (folders exported before the exporter moved them out).
 */
export const MAX_SPLIT_GRAPH_BYTES = 256 * 1024 * 1024;

/** The image part's outputs for one image: what the text part reads besides the question. */
export type ImageState = Record<string, TensorData>;

export class FusionParts {
  private readonly cache?: LRUCache<string, ImageState>;

  private constructor(
    readonly imagePart: OnnxGraph,
    readonly textPart: OnnxGraph,
    readonly handoff: readonly string[],
    cacheBytes: number,
  ) {
    if (cacheBytes > 0) {
      this.cache = new LRUCache<string, ImageState>({
        maxSize: cacheBytes,
        sizeCalculation: (state) => Math.max(1, Object.values(state).reduce((bytes, tensor) => bytes + tensor.data.byteLength, 0)),
      });
    }
  }

  /**
   * Opens the fusion graph as its two parts, or returns undefined where it stays whole: caching off, a graph file
   * with its weights inside it, or a graph with no image-only work to cut out.
   */
  static async open(name: string, file: GraphFile, session: GraphSessionOptions, cacheBytes: number): Promise<FusionParts | undefined> {
    if (cacheBytes <= 0) return undefined;
    if ((await stat(file.path)).size > MAX_SPLIT_GRAPH_BYTES) return undefined;
    const split = splitImageWork(await readFile(file.path), IMAGE_INPUTS);
    if (!('imagePart' in split)) return undefined;
    const folder = dirname(file.path);
    const imagePart = await OnnxGraph.fromBytes(`${name} (image part)`, split.imagePart, file.path, folder, session);
    let textPart: OnnxGraph;
    try {
      textPart = await OnnxGraph.fromBytes(`${name} (text part)`, split.textPart(imagePart.outputTypes), file.path, folder, session);
    } catch (error) {
      await imagePart.dispose();
      throw error;
    }
    return new FusionParts(imagePart, textPart, split.handoff, cacheBytes);
  }

  /** The cached image state, if this worker has it. */
  cached(imageKey: string | undefined): ImageState | undefined {
    return imageKey === undefined ? undefined : this.cache?.get(imageKey);
  }

  /** Runs the image part and caches its results under `imageKey` (when given and within the budget). */
  async imageState(imageEmbeds: TensorData, imageKey: string | undefined): Promise<{ state: ImageState; ms: number }> {
    const started = performance.now();
    const state = await this.imagePart.run({ [IMAGE_INPUTS[0]!]: imageEmbeds });
    if (imageKey !== undefined) this.cache?.set(imageKey, state);
    return { state, ms: performance.now() - started };
  }

  /** The text part: the question's inputs and an image state. */
  async logits(inputs: Record<string, TensorData>, state: ImageState): Promise<Float32Array> {
    const outputs = await this.textPart.run({ ...inputs, ...state }, ['logits']);
    return outputs.logits!.data as Float32Array;
  }

  get cachedBytes(): number {
    return this.cache?.calculatedSize ?? 0;
  }

  async dispose(): Promise<void> {
    this.cache?.clear();
    await Promise.all([this.imagePart.dispose(), this.textPart.dispose()]);
  }
}
