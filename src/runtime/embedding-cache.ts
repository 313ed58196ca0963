import { LRUCache } from 'lru-cache';
import type { TensorData } from './onnx-session.js';

/**
 * Image embeddings per image hash, bounded in bytes: VLE base embeddings are 4 MB an image, so a count bound
 * would say nothing about memory.
 */
export class EmbeddingCache {
  private readonly cache: LRUCache<string, TensorData>;

  constructor(maxBytes: number) {
    this.cache = new LRUCache<string, TensorData>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (tensor) => Math.max(1, tensor.data.byteLength),
    });
  }

  get(hash: string): TensorData | undefined {
    return this.cache.get(hash);
  }

  set(hash: string, tensor: TensorData): void {
    // A tensor larger than the whole budget is not cached (lru-cache would refuse it anyway).
    if (tensor.data.byteLength <= this.cache.maxSize) this.cache.set(hash, tensor);
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
