import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

// prom-client costs ~0.08 s of CPU to import, and the vision models import this module for its counts on every
// `ask`: its classes load only when a registry asks for the counters. It is CommonJS, so require gives the same
// classes (the same module instance as an `import` elsewhere) synchronously.
const require = createRequire(import.meta.url);

/** What happened to one shared-cache operation. */
export type SharedCacheOutcome = 'hit' | 'miss' | 'stored' | 'error' | 'corrupt';

/** Kinds of image work the caches hold. */
export type ImageWorkKind = 'caption' | 'image_embeddings';

// Process-wide: one process is one replica, and its server's /metrics reports what its vision models did. Plain
// counts here, read by collect(), so that several registries (several servers in one test process) can show them.
const outcomes = new Map<string, number>();
const encoderRuns = new Map<string, number>();

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** Counts one shared-cache operation. */
export function countSharedCache(kind: ImageWorkKind, outcome: SharedCacheOutcome): void {
  bump(outcomes, `${kind}|${outcome}`);
}

/** Counts one run of a vision encoder (`blip-captioner` or `vle-vqa`): the image work the caches exist to avoid. */
export function countVisionEncoderRun(model: string): void {
  bump(encoderRuns, model);
}

/** A snapshot of the counts, for tests and benchmarks in the same process. */
export function sharedCacheCounts(): { operations: Record<string, number>; encoderRuns: Record<string, number> } {
  return { operations: Object.fromEntries(outcomes), encoderRuns: Object.fromEntries(encoderRuns) };
}

/**
 * Adds `vqa_llm_shared_cache_operations_total{kind,outcome}` and `vqa_llm_vision_encoder_runs_total{model}` to a
 * registry. An outage shows as `outcome="error"`, a damaged value as `outcome="corrupt"`; answers go on either way.
 *
 * @example
 * const registry = new Registry();
 * registerSharedCacheMetrics(registry);
 * await registry.metrics(); // ... vqa_llm_vision_encoder_runs_total{model="vle-vqa"} 3 ...
 */
export function registerSharedCacheMetrics(registry: Registry): void {
  const { Counter } = require('prom-client') as typeof import('prom-client');
  new Counter({
    name: 'vqa_llm_shared_cache_operations_total',
    help: 'Shared (Redis) image-work cache operations by kind (caption, image_embeddings) and outcome (hit, miss, stored, error, corrupt).',
    labelNames: ['kind', 'outcome'] as const,
    registers: [registry],
    collect() {
      // A counter only goes up, and so do these counts: setting it from them each scrape keeps it one.
      this.reset();
      for (const [key, count] of outcomes) {
        const [kind, outcome] = key.split('|') as [string, string];
        this.labels({ kind, outcome }).inc(count);
      }
    },
  });
  new Counter({
    name: 'vqa_llm_vision_encoder_runs_total',
    help: 'Vision encoder runs by model kind (blip-captioner, vle-vqa); cached image work does not run one.',
    labelNames: ['model'] as const,
    registers: [registry],
    collect() {
      this.reset();
      // Both kinds always shown: a replica whose follow-ups all hit the cache reports 0, not nothing.
      for (const model of ['blip-captioner', 'vle-vqa']) this.labels({ model }).inc(encoderRuns.get(model) ?? 0);
      for (const [model, count] of encoderRuns) if (model !== 'blip-captioner' && model !== 'vle-vqa') this.labels({ model }).inc(count);
    },
  });
}
