import { InvalidOptionError } from '../errors/invalid-option-error.js';
import type { ImageLimits } from '../types.js';
import { budgetExecutor } from './budgeted-executor.js';
import type { CoreBudget } from './core-budget.js';
import { countVisionEncoderRun } from '../distributed/shared-cache-metrics.js';
import { modelIdentity } from '../distributed/model-identity.js';
import { EmbeddingCache, type SharedImageWork } from './embedding-cache.js';
import { createExecutor, defaultThreadsPerWorker, type Executor } from './executor.js';
import { loadModelFolder, type LoadedModelFolder } from './model-loader.js';
import type { GraphSessionOptions } from './onnx-session.js';
import type { LoadTaskResult, WorkerModelSpec } from './worker-protocol.js';

export interface VisionModelOptions {
  /** Worker threads for this model; 0 runs inference on the calling thread. Default 1. */
  workers?: number;
  /** onnxruntime threads per worker. Default: the budget's cores with `coreBudget`, else the machine's cores shared among all workers. */
  threads?: number;
  /** Each run waits for its `threads` cores in this budget, shared with other models, before it starts. */
  coreBudget?: CoreBudget;
  /** Lead of this model's runs in the budget's queue, in ms (see `CoreRequest.leadMs`). Default 0. */
  runLeadMs?: number;
  /** onnxruntime settings beyond the thread count (spinning, arena, memory patterns). */
  sessionOptions?: Omit<GraphSessionOptions, 'intraOpNumThreads'>;
  /** Use int8 graphs where the folder has them. */
  quantized?: boolean;
  /** Budget of the per-image embedding cache in bytes. Default 256 MiB. */
  embeddingCacheBytes?: number;
  /**
   * VLE: budget in bytes of the cache each inference worker keeps of the fusion graph's image-only results (layer 0's
   * image self-attention and cross-attention queries, the text stream's first cross-attention keys and values: 16 MB
   * an image for the base model at 576 px), so that a follow-up question runs only the rest of the fusion graph.
   * Default 64 MiB; 0 runs the fusion graph whole. Graph files with their weights inside them over 256 MiB (exports
   * from before the exporter moved weights to `.onnx.data`) always run whole.
   */
  fusionCacheBytes?: number;
  /** Limits applied when images are loaded. */
  imageLimits?: ImageLimits;
  /** Re-hash every file against the manifest before loading. Default false (sizes are always checked). */
  verifyChecksums?: boolean;
  /** Run inference on this executor instead of creating one (it is not destroyed by `dispose`). */
  executor?: Executor;
  /** Image work shared with other processes (Redis: `createSharedImageCache`), behind the local caches. */
  sharedCache?: SharedImageWork;
}

const defaultEmbeddingCacheBytes = 256 * 1024 * 1024;
export const DEFAULT_FUSION_CACHE_BYTES = 64 * 1024 * 1024;

/** A model folder opened on an executor whose workers have already created the sessions. */
export interface OpenedModel {
  model: LoadedModelFolder;
  executor: Executor;
  ownsExecutor: boolean;
  /** What the worker reported when it opened the sessions. */
  loaded: LoadTaskResult;
}

/**
 * Reads the folder on this thread, then opens its sessions in the workers, so a broken graph fails at load time. The
 * workers start first: their start-up (a thread, onnxruntime, the image code) overlaps the reading of the folder and
 * the tokenizer here.
 */
export async function openModel(folder: string, kind: WorkerModelSpec['kind'], options: VisionModelOptions): Promise<OpenedModel> {
  const workers = options.workers ?? 1;
  const threads = options.threads ?? options.coreBudget?.cores ?? defaultThreadsPerWorker(workers);
  const fusionCacheBytes = options.fusionCacheBytes ?? DEFAULT_FUSION_CACHE_BYTES;
  checkInteger('fusionCacheBytes', fusionCacheBytes, 0, Number.MAX_SAFE_INTEGER);
  const inner = options.executor ?? createExecutor({ workers });
  const executor = options.coreBudget ? budgetExecutor(inner, { budget: options.coreBudget, cores: threads, leadMs: options.runLeadMs }) : inner;
  try {
    const model = await loadModelFolder(folder, kind, {
      quantized: options.quantized,
      verifyChecksums: options.verifyChecksums,
      session: { ...options.sessionOptions, intraOpNumThreads: threads },
      fusionCacheBytes,
    });
    const loaded = await executor.run<LoadTaskResult>({ type: 'load', model: model.spec });
    return { model, executor, ownsExecutor: !options.executor, loaded };
  } catch (error) {
    if (!options.executor) await executor.destroy();
    throw error;
  }
}

/** What the captioner and the VQA model share: the opened folder, its executor and the per-image embedding cache. */
export abstract class VisionModelBase {
  protected readonly model: LoadedModelFolder;
  protected readonly executor: Executor;
  protected readonly embeddings: EmbeddingCache;
  /** Names this exact model in the shared cache (see modelIdentity). */
  protected readonly modelId: string;
  private readonly ownsExecutor: boolean;

  protected constructor(
    opened: OpenedModel,
    protected readonly options: VisionModelOptions,
  ) {
    this.model = opened.model;
    this.executor = opened.executor;
    this.ownsExecutor = opened.ownsExecutor;
    this.modelId = modelIdentity(this.model);
    const kind = this.model.manifest.kind;
    this.embeddings = new EmbeddingCache(options.embeddingCacheBytes ?? defaultEmbeddingCacheBytes, {
      shared: options.sharedCache?.embeddingsFor(this.modelId),
      onStore: () => countVisionEncoderRun(kind),
    });
  }

  /** The model's name from its manifest. */
  get name(): string {
    return this.model.manifest.name;
  }

  get folder(): string {
    return this.model.folder;
  }

  /** Drops what is cached per image. */
  clearCache(): void {
    this.embeddings.clear();
  }

  async dispose(): Promise<void> {
    this.clearCache();
    if (this.ownsExecutor) await this.executor.destroy();
  }
}

export function checkInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError('invalid_value', `${name} must be an integer from ${min} to ${max}, got ${value}.`);
  }
}
