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
  private constructor(
    readonly imagePart: OnnxGraph,
    readonly textPart: OnnxGraph,
    readonly handoff: readonly string[],
    private readonly cache: LRUCache<string, ImageState>,
  ) {}

  /**
   * Opens the fusion graph as its two parts, or says why it stays whole: caching off, a graph file over
   * MAX_SPLIT_GRAPH_BYTES, a graph with no image-only work to cut out, or parts that onnxruntime or the manifest
   * reject. Nothing here fails the model's load: the caller opens the graph whole instead, and that load reports
   * whatever is wrong with the graph itself.
   */
  static async open(name: string, file: GraphFile, session: GraphSessionOptions, cacheBytes: number): Promise<FusionParts | { whole: string }> {
    if (!(cacheBytes > 0)) return { whole: 'fusionCacheBytes is 0' };
    if (!Number.isSafeInteger(cacheBytes)) return { whole: `fusionCacheBytes must be a whole number of bytes, got ${cacheBytes}` };
    let split: ReturnType<typeof splitImageWork>;
    try {
      const bytes = (await stat(file.path)).size;
      if (bytes > MAX_SPLIT_GRAPH_BYTES) return { whole: `${file.path} is ${bytes} bytes, over ${MAX_SPLIT_GRAPH_BYTES}: its weights are inside it (export it again)` };
      split = splitImageWork(await readFile(file.path), IMAGE_INPUTS);
    } catch (error) {
      return { whole: `could not read ${file.path} to split it: ${messageOf(error)}` };
    }
    if (!('imagePart' in split)) return { whole: split.reason };
    const cache = new LRUCache<string, ImageState>({
      maxSize: cacheBytes,
      sizeCalculation: (state) => Math.max(1, Object.values(state).reduce((total, tensor) => total + tensor.data.byteLength, 0)),
    });
    const folder = dirname(file.path);
    const opened: OnnxGraph[] = [];
    try {
      const imagePart = await OnnxGraph.fromBytes(`${name} (image part)`, split.imagePart, file.path, folder, session);
      opened.push(imagePart);
      const textPart = await OnnxGraph.fromBytes(`${name} (text part)`, split.textPart(imagePart.outputTypes), file.path, folder, session);
      opened.push(textPart);
      const mismatch = specMismatch(file, imagePart, textPart, split.handoff);
      if (mismatch) throw new Error(mismatch);
      return new FusionParts(imagePart, textPart, split.handoff, cache);
    } catch (error) {
      await Promise.allSettled(opened.map((graph) => graph.dispose()));
      return { whole: `the parts did not open: ${messageOf(error)}` };
    }
  }

  /** The cached image state, if this worker has it. */
  cached(imageKey: string | undefined): ImageState | undefined {
    return imageKey === undefined ? undefined : this.cache.get(imageKey);
  }

  /** Runs the image part and caches its results under `imageKey` (when given and within the budget). */
  async imageState(imageEmbeds: TensorData, imageKey: string | undefined): Promise<{ state: ImageState; ms: number }> {
    const started = performance.now();
    const state = await this.imagePart.run({ [IMAGE_INPUTS[0]!]: imageEmbeds });
    if (imageKey !== undefined) this.cache.set(imageKey, state);
    return { state, ms: performance.now() - started };
  }

  /** The text part: the question's inputs and an image state. */
  async logits(inputs: Record<string, TensorData>, state: ImageState): Promise<Float32Array> {
    const outputs = await this.textPart.run({ ...inputs, ...state }, ['logits']);
    return outputs.logits!.data as Float32Array;
  }

  async dispose(): Promise<void> {
    this.cache.clear();
    await Promise.all([this.imagePart.dispose(), this.textPart.dispose()]);
  }
}

/** What differs between the manifest's fusion graph and its two parts together, if anything. */
function specMismatch(file: GraphFile, imagePart: OnnxGraph, textPart: OnnxGraph, handoff: readonly string[]): string | undefined {
  const inputs = [...imagePart.inputNames, ...textPart.inputNames.filter((name) => !handoff.includes(name))].sort();
  const expectedInputs = file.inputs.map((input) => input.name).sort();
  const outputs = [...textPart.outputNames].sort();
  const expectedOutputs = file.outputs.map((output) => output.name).sort();
  if (JSON.stringify(inputs) !== JSON.stringify(expectedInputs)) return `the parts read ${inputs.join(', ')} where the manifest lists ${expectedInputs.join(', ')}`;
  if (JSON.stringify(outputs) !== JSON.stringify(expectedOutputs)) return `the parts write ${outputs.join(', ')} where the manifest lists ${expectedOutputs.join(', ')}`;
  return undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
