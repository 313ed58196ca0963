// Messages between the main thread and inference workers. Plain data only: everything here is structured-cloned.
import type { GraphSessionOptions, TensorData, TensorSpecLike } from './onnx-session.js';
import type { SearchOptions } from '../generation/types.js';
import type { LoadedImage, PreprocessorConfig } from '../types.js';

export interface GraphFile {
  path: string;
  inputs: TensorSpecLike[];
  outputs: TensorSpecLike[];
}

/** Everything a worker needs to open a model: no manifest parsing happens off the main thread. */
export interface WorkerModelSpec {
  /** Unique per folder and session settings: workers cache loaded graphs under it. */
  key: string;
  kind: 'blip-captioner' | 'vle-vqa';
  graphs: Record<string, GraphFile>;
  session: GraphSessionOptions;
  /** Preprocessing runs in the worker: an exact resize of a large photo is CPU work the event loop must not do. */
  preprocessor: PreprocessorConfig;
  /**
   * VLE: bytes of fusion image state each worker caches per image (fusion-parts.ts); 0 or absent runs the fusion
   * graph whole.
   */
  fusionCacheBytes?: number;
}

export interface CaptionTask {
  type: 'caption';
  model: WorkerModelSpec;
  /** One of the three: a decoded image to preprocess, pixels already preprocessed, or cached embeddings. */
  image?: LoadedImage;
  pixelValues?: TensorData;
  imageEmbeds?: TensorData;
  search: Omit<SearchOptions, 'isCancelled'>;
  /** Int32Array(1) over a SharedArrayBuffer: the main thread sets it to 1 to stop a decode between steps. */
  cancel?: SharedArrayBuffer;
}

export interface VqaTask {
  type: 'vqa';
  model: WorkerModelSpec;
  image?: LoadedImage;
  pixelValues?: TensorData;
  imageEmbeds?: TensorData;
  inputIds: number[];
  attentionMask: number[];
  /** Names the image (its bytes' hash) for the worker's fusion image-state cache; absent for bare pixels. */
  imageKey?: string;
  cancel?: SharedArrayBuffer;
}

export interface LoadTask {
  type: 'load';
  model: WorkerModelSpec;
}

export type WorkerTask = CaptionTask | VqaTask | LoadTask;

export interface CaptionTaskResult {
  tokenIds: number[];
  /** Returned only when the worker computed them, so the main thread can cache them. */
  imageEmbeds?: TensorData;
  cancelled: boolean;
  timings: { preprocess?: number; vision?: number; crossAttention: number; decoder: number; steps: number };
}

export interface VqaTaskResult {
  logits: Float32Array;
  imageEmbeds?: TensorData;
  /** The worker had the image's fusion state: neither the image encoder nor fusion's image part ran. */
  imageStateCached?: boolean;
  cancelled: boolean;
  /** `fusion` includes `fusionImage`, the image part's run, when it ran. */
  timings: { preprocess?: number; vision?: number; fusion: number; fusionImage?: number };
}

export interface LoadTaskResult {
  graphs: Record<string, { inputNames: string[]; outputNames: string[] }>;
  /** Present when the fusion graph opened as its image and text parts. */
  fusionSplit?: { handoff: string[] };
  /** Present when a VLE fusion graph opened whole: why. */
  fusionWhole?: string;
}
