import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import type { VisionModels } from '../types.js';

// Random leading pixels: 2^128 probe images, so two probes (two replicas, or one replica twice) never share one.
const PROBE_NONCE_BYTES = 16;

export interface ReadinessState {
  ready: boolean;
  /** Why not ready: `loading`, `draining`, or the probe's failure message. */
  reason?: string;
  checkedAt?: string;
}

/**
 * Readiness: the models are loaded and a tiny inference through both of them succeeds, on an image that no cache
 * holds, so that it runs this process's own vision encoders. The probe runs once at start; until it has passed,
 * `/readyz` says `loading` at once rather than holding the caller for the inference (worker threads start, sessions
 * warm up). After a failure the next check runs it again, so a transient fault heals without a restart. Once draining (SIGTERM), readiness fails for good, so load balancers stop sending requests.
 */
export interface ReadinessProbe {
  check(): Promise<ReadinessState>;
  /** Resolves once the first probe has finished, passed or not. */
  settled(): Promise<ReadinessState>;
  setDraining(draining: boolean): void;
  readonly draining: boolean;
}

/**
 * A probe image no cache can answer: its bytes, and so its hash (the key of the local caches and of the shared Redis
 * cache), are new for every probe. A fixed image would be answered from Redis on every replica but the first, and
 * would prove nothing about this replica's encoders. 32x32 keeps the probe cheap; a gradient rather than a flat
 * colour so that decoding does real work. Its caption and embeddings are still written to the caches like any
 * image's (a few MB for full-size models in Redis, gone with the cache's TTL or LRU).
 */
async function probeImage(): Promise<Uint8Array> {
  const pixels = Buffer.alloc(32 * 32 * 3);
  for (let index = 0; index < pixels.length; index += 1) pixels[index] = (index * 7) % 256;
  randomBytes(PROBE_NONCE_BYTES).copy(pixels);
  return sharp(pixels, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
}

/**
 * @example
 * ```ts
 * const readiness = createReadinessProbe(vision);
 * const { ready } = await readiness.check();
 * ```
 */
export function createReadinessProbe(vision: VisionModels): ReadinessProbe {
  let draining = false;
  let last: ReadinessState | undefined;
  let running: Promise<ReadinessState> | undefined;

  const probe = async (): Promise<ReadinessState> => {
    try {
      const image = await vision.loadImage(await probeImage());
      await Promise.all([vision.caption(image, { maxNewTokens: 2, numBeams: 1 }), vision.candidates(image, 'what is this?', { topK: 1 })]);
      return { ready: true, checkedAt: new Date().toISOString() };
    } catch (error) {
      return { ready: false, reason: `probe inference failed: ${(error as Error)?.message ?? String(error)}`, checkedAt: new Date().toISOString() };
    }
  };

  // Concurrent checks share one probe instead of each running inference.
  const start = (): Promise<ReadinessState> =>
    (running ??= probe().then((state) => {
      last = state;
      running = undefined;
      return state;
    }));

  return {
    async check() {
      if (draining) return { ready: false, reason: 'draining' };
      if (last?.ready) return last;
      if (running) return { ready: false, reason: 'loading' };
      void start();
      return last ?? { ready: false, reason: 'loading' };
    },
    settled() {
      return last && !running ? Promise.resolve(last) : start();
    },
    setDraining(value) {
      draining = value;
    },
    get draining() {
      return draining;
    },
  };
}
