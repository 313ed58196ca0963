import { LRUCache } from 'lru-cache';
import type { TensorData } from './onnx-session.js';

/**
 * A second tier behind the local LRU, shared between processes (Redis: src/distributed/shared-image-cache.ts),
 * already scoped to one model. It never throws: a failure is a miss, and the work is done locally.
 */
export interface SharedTensorStore {
  get(imageHash: string): Promise<TensorData | undefined>;
  set(imageHash: string, tensor: TensorData): Promise<void>;
}

/** Image work shared between processes, per model identity: what `VisionModelOptions.sharedCache` takes. */
export interface SharedImageWork {
  embeddingsFor(modelId: string): SharedTensorStore;
  /** `variant` names the image and the decoding settings; never throws (a failure is a miss). */
  getCaption(modelId: string, variant: string): Promise<{ caption: string; tokenIds: number[] } | undefined>;
  setCaption(modelId: string, variant: string, caption: { caption: string; tokenIds: number[] }): Promise<void>;
}

export interface EmbeddingCacheOptions {
  /** The shared tier, when replicas share image work. */
  shared?: SharedTensorStore;
  /** Called once per `store`, i.e. once per vision-encoder run whose output is cached (for metrics). */
  onStore?: () => void;
}

/**
 * Image embeddings per image hash, bounded in bytes: VLE base embeddings are 4 MB an image, so a count bound
 * would say nothing about memory.
 */
export class EmbeddingCache {
  private readonly cache: LRUCache<string, TensorData>;
  private readonly shared?: SharedTensorStore;
  private readonly onStore?: () => void;

  constructor(maxBytes: number, options: EmbeddingCacheOptions = {}) {
    this.cache = new LRUCache<string, TensorData>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (tensor) => Math.max(1, tensor.data.byteLength),
    });
    this.shared = options.shared;
    this.onStore = options.onStore;
  }

  get(hash: string): TensorData | undefined {
    return this.cache.get(hash);
  }

  set(hash: string, tensor: TensorData): void {
    // A tensor larger than the whole budget is not cached (lru-cache would refuse it anyway).
    if (tensor.data.byteLength <= this.cache.maxSize) this.cache.set(hash, tensor);
  }

  /** The local entry, else the shared tier's (kept locally for the next question). */
  async lookup(hash: string): Promise<TensorData | undefined> {
    const local = this.cache.get(hash);
    if (local || !this.shared) return local;
    const shared = await this.shared.get(hash);
    if (shared) this.set(hash, shared);
    return shared;
  }

  /**
   * Caches freshly computed embeddings locally and in the shared tier. The shared write is awaited (bounded by the
   * tier's command timeout), so that once an answer is out, another replica's follow-up finds the work.
   */
  async store(hash: string, tensor: TensorData): Promise<void> {
    this.onStore?.();
    this.set(hash, tensor);
    await this.shared?.set(hash, tensor);
  }

  get bytes(): number {
    return this.cache.calculatedSize;
  }

  get size(): number {
    return this.cache.size;
  }

  clear(): void {
    this.cache.clear();
  }
}
