import { createHash } from 'node:crypto';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import type { SharedTensorStore } from '../runtime/embedding-cache.js';
import type { TensorData } from '../runtime/onnx-session.js';
import { openRedis, type RedisClient } from './redis-client.js';
import { integerSetting, parseRedisUrl, redact } from './redis-url.js';
import { countSharedCache } from './shared-cache-metrics.js';
import { decodeTensor, encodeTensor, type StoredPrecision } from './tensor-codec.js';

export interface SharedImageCacheOptions {
  /**
   * `redis://[user:password@]host:port[/db]` (or `rediss://`). Query parameters may carry the settings below:
   * `?ttl=3600&precision=float16&prefix=vqa-llm&timeout=500`; options given here win over them.
   */
  url: string;
  /** Seconds an entry lives after it is written. Default 3600 (a chat's follow-ups come within minutes). */
  ttlSeconds?: number;
  /** How embeddings are stored: `float32` (as computed) or `float16` (half the bytes). Default `float32`. */
  precision?: StoredPrecision;
  /** Key prefix, so that several deployments can share one Redis. Default `vqa-llm`. */
  prefix?: string;
  /** Milliseconds a Redis command may take before the cache gives up on it and the work is done locally. Default 500. */
  timeoutMs?: number;
  /** The flag or env var the URL came from, for error messages. Default `cache`. */
  source?: string;
}

/** A cached caption: what the captioner needs to answer without running BLIP. */
export interface SharedCaption {
  caption: string;
  tokenIds: number[];
}

export const SHARED_CACHE_DEFAULTS = { ttlSeconds: 3600, precision: 'float32', prefix: 'vqa-llm', timeoutMs: 500 } as const;

// After a failure, Redis is left alone for a while: a hung server would otherwise cost every answer a timeout.
const BACKOFF_MS = 2_000;

/**
 * The image work of every replica, in Redis: captions and image embeddings keyed by the model's identity and the
 * image bytes' sha256. It sits behind each model's local LRU. Every failure (Redis down, slow, full, a damaged
 * value) is counted in `vqa_llm_shared_cache_operations_total` and turns into a miss: the work is then done
 * locally, and the answer never fails because of the cache.
 *
 * @example
 * const cache = createSharedImageCache({ url: 'redis://127.0.0.1:6379/0?ttl=600' });
 * const vision = await createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle', cache });
 * // ... later, in another process with the same URL, the same image's follow-up runs no vision encoder
 * await vision.dispose();
 * await cache.close();
 */
export class SharedImageCache {
  readonly ttlSeconds: number;
  readonly precision: StoredPrecision;
  readonly prefix: string;
  /** The URL with its password hidden, for logs. */
  readonly displayUrl: string;
  private client?: RedisClient;
  private readonly connecting: Promise<RedisClient | undefined>;
  private closed = false;
  private resumeAt = 0;

  constructor(options: SharedImageCacheOptions) {
    const flag = options.source ?? 'cache';
    const { connection, settings } = parseRedisUrl(options.url, { flag, settings: ['ttl', 'precision', 'prefix', 'timeout'] });
    this.ttlSeconds = options.ttlSeconds ?? integerSetting(settings, 'ttl', SHARED_CACHE_DEFAULTS.ttlSeconds, flag);
    const precision = options.precision ?? settings.get('precision') ?? SHARED_CACHE_DEFAULTS.precision;
    if (precision !== 'float32' && precision !== 'float16') throw new InvalidOptionError('invalid_value', `${flag}: precision must be float32 or float16, got "${precision}".`);
    this.precision = precision;
    this.prefix = options.prefix ?? settings.get('prefix') ?? SHARED_CACHE_DEFAULTS.prefix;
    const timeoutMs = options.timeoutMs ?? integerSetting(settings, 'timeout', SHARED_CACHE_DEFAULTS.timeoutMs, flag);
    this.displayUrl = redact(options.url);
    // Until the client exists (ioredis loads on first use) every operation is a miss, as during an outage.
    this.connecting = openRedis(connection, { role: 'cache', commandTimeoutMs: timeoutMs }).then(
      (client) => {
        if (this.closed) client.disconnect();
        else this.client = client;
        return client;
      },
      () => undefined,
    );
  }

  /** The store one model's embeddings go through (what `EmbeddingCache` calls on a local miss). */
  embeddingsFor(modelId: string): SharedTensorStore {
    return {
      get: (imageHash) => this.getTensor(this.key(modelId, 'emb', imageHash)),
      set: (imageHash, tensor) => this.setTensor(this.key(modelId, 'emb', imageHash), tensor),
    };
  }

  /** A cached caption for the model, image and decoding settings (`variant`), or undefined. */
  async getCaption(modelId: string, variant: string): Promise<SharedCaption | undefined> {
    const raw = await this.read('caption', this.key(modelId, 'cap', digest(variant)));
    if (raw === undefined) return undefined;
    try {
      const value = JSON.parse(raw.toString('utf8')) as Partial<SharedCaption>;
      if (typeof value.caption === 'string' && Array.isArray(value.tokenIds) && value.tokenIds.every(Number.isInteger)) {
        countSharedCache('caption', 'hit');
        return { caption: value.caption, tokenIds: value.tokenIds };
      }
    } catch {
      // Not JSON: counted as corrupt below.
    }
    this.dropCorrupt('caption', this.key(modelId, 'cap', digest(variant)));
    return undefined;
  }

  async setCaption(modelId: string, variant: string, caption: SharedCaption): Promise<void> {
    await this.write('caption', this.key(modelId, 'cap', digest(variant)), Buffer.from(JSON.stringify({ caption: caption.caption, tokenIds: caption.tokenIds })));
  }

  /**
   * Resolves true once connected, false after `timeoutMs` (default 2 s) without a connection. Nothing needs to
   * wait for it (the cache misses until then); model loading does, in parallel, so that the first answers share.
   */
  async ready(timeoutMs = 2_000): Promise<boolean> {
    const client = await this.connecting;
    if (!client || this.closed) return false;
    if (client.status === 'ready') return true;
    return new Promise<boolean>((resolve) => {
      const done = (value: boolean): void => {
        clearTimeout(timer);
        client.off('ready', onReady);
        resolve(value);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      client.on('ready', onReady);
    });
  }

  /** Closes the connection. Pending commands fail (and count as errors); nothing is lost but cache entries. */
  async close(): Promise<void> {
    this.closed = true;
    (await this.connecting)?.disconnect();
  }

  private key(modelId: string, kind: 'emb' | 'cap', id: string): string {
    return `${this.prefix}:img:v1:${modelId}:${kind}:${id}`;
  }

  private async getTensor(key: string): Promise<TensorData | undefined> {
    const raw = await this.read('image_embeddings', key);
    if (raw === undefined) return undefined;
    const tensor = decodeTensor(raw);
    if (!tensor) {
      this.dropCorrupt('image_embeddings', key);
      return undefined;
    }
    countSharedCache('image_embeddings', 'hit');
    return tensor;
  }

  private async setTensor(key: string, tensor: TensorData): Promise<void> {
    if (tensor.type !== 'float32') return;
    await this.write('image_embeddings', key, encodeTensor(tensor, { precision: this.precision }));
  }

  private usable(): RedisClient | undefined {
    return this.client?.status === 'ready' && Date.now() >= this.resumeAt ? this.client : undefined;
  }

  private async read(kind: 'caption' | 'image_embeddings', key: string): Promise<Buffer | undefined> {
    const client = this.usable();
    if (!client) {
      countSharedCache(kind, 'error');
      return undefined;
    }
    try {
      const raw = await client.getBuffer(key);
      if (raw === null) countSharedCache(kind, 'miss');
      return raw ?? undefined;
    } catch {
      this.failed(kind);
      return undefined;
    }
  }

  private async write(kind: 'caption' | 'image_embeddings', key: string, value: Buffer): Promise<void> {
    const client = this.usable();
    if (!client) {
      countSharedCache(kind, 'error');
      return;
    }
    try {
      await client.set(key, value, 'EX', this.ttlSeconds);
      countSharedCache(kind, 'stored');
    } catch {
      // Also a full Redis under maxmemory-policy noeviction: the entry is simply not shared.
      this.failed(kind);
    }
  }

  private failed(kind: 'caption' | 'image_embeddings'): void {
    countSharedCache(kind, 'error');
    this.resumeAt = Date.now() + BACKOFF_MS;
  }

  private dropCorrupt(kind: 'caption' | 'image_embeddings', key: string): void {
    countSharedCache(kind, 'corrupt');
    // The replica that computes the work again writes a good value; until then nobody should read this one.
    this.client?.del(key).catch(() => undefined);
  }
}

/**
 * Opens the shared image-work cache described by a Redis URL. Nothing waits for Redis: while it is unreachable
 * the cache misses (and counts errors), and it is used again as soon as the connection comes back.
 *
 * @throws {InvalidOptionError} for a URL that is not redis:// or rediss://, or a bad setting in it.
 *
 * @example
 * const cache = createSharedImageCache({ url: process.env.VQA_LLM_REDIS_URL!, source: 'VQA_LLM_REDIS_URL' });
 */
export function createSharedImageCache(options: SharedImageCacheOptions): SharedImageCache {
  return new SharedImageCache(options);
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}
