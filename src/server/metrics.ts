import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { VqaResult } from '../../chains/types.js';
import { registerSharedCacheMetrics } from '../distributed/shared-cache-metrics.js';
import type { RequestQueueState } from './request-queue.js';

/** The server's Prometheus metrics, on a registry of its own so that several servers can live in one process. */
export interface ServerMetrics {
  registry: Registry;
  observeRequest(labels: { method: string; route: string; status: number }, seconds: number): void;
  observeResult(result: VqaResult): void;
  observeQueue(state: RequestQueueState): void;
  observeReject(reason: string): void;
  observeCircuit(state: 'closed' | 'open' | 'half-open', options?: { initial?: boolean }): void;
}

// Tiny models answer in milliseconds, full-size ones in seconds, an LLM in up to tens of seconds.
const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * @example
 * ```ts
 * const metrics = createServerMetrics();
 * metrics.observeResult(result);
 * const text = await metrics.registry.metrics();
 * ```
 */
export function createServerMetrics(options: { defaultMetrics?: boolean } = {}): ServerMetrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  registerSharedCacheMetrics(registry);
  const requests = new Counter({
    name: 'vqa_llm_http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const requestSeconds = new Histogram({
    name: 'vqa_llm_http_request_duration_seconds',
    help: 'HTTP request latency by route, until the last byte (the whole stream for SSE).',
    labelNames: ['method', 'route'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const stageSeconds = new Histogram({
    name: 'vqa_llm_stage_duration_seconds',
    help: 'Pipeline latency per stage: prepare, caption, candidates, vision (both together), llm, total.',
    labelNames: ['stage'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const answers = new Counter({
    name: 'vqa_llm_answers_total',
    help: 'Answers by source: llm, or vqa when the top candidate was used.',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  const fallbacks = new Counter({
    name: 'vqa_llm_fallbacks_total',
    help: 'Answers that fell back to the top VQA candidate, by reason code.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const cacheHits = new Counter({
    name: 'vqa_llm_image_cache_hits_total',
    help: 'Image-only work reused from the per-image cache (follow-up questions), by kind: caption, image_embeddings.',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const queueDepth = new Gauge({ name: 'vqa_llm_queue_depth', help: 'Requests waiting for a slot.', registers: [registry] });
  const inFlight = new Gauge({ name: 'vqa_llm_requests_in_flight', help: 'Requests being answered now.', registers: [registry] });
  const rejects = new Counter({
    name: 'vqa_llm_rejected_requests_total',
    help: 'Requests refused (4xx, and 503 when at capacity, past the deadline or draining), by error code.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  for (const source of ['llm', 'vqa']) answers.inc({ source }, 0);
  const circuit = new Gauge({
    name: 'vqa_llm_llm_circuit_state',
    help: 'State of the LLM circuit breaker: 0 closed, 1 half-open, 2 open (a dead LLM is skipped).',
    registers: [registry],
  });
  const circuitChanges = new Counter({
    name: 'vqa_llm_llm_circuit_transitions_total',
    help: 'Changes of the LLM circuit breaker, by the state entered.',
    labelNames: ['state'] as const,
    registers: [registry],
  });
  // Also among the default metrics as process_resident_memory_bytes, but those can be turned off; this one cannot.
  new Gauge({
    name: 'vqa_llm_rss_bytes',
    help: 'Resident set size of the server process.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss());
    },
  });

  return {
    registry,
    observeRequest({ method, route, status }, seconds) {
      requests.inc({ method, route, status: String(status) });
      requestSeconds.observe({ method, route }, seconds);
    },
    observeResult(result) {
      const { timings } = result;
      for (const stage of ['prepare', 'caption', 'candidates', 'vision', 'llm', 'total'] as const) {
        if (stage === 'llm' && result.models.llm === null) continue;
        stageSeconds.observe({ stage }, timings[stage] / 1000);
      }
      answers.inc({ source: result.source });
      if (result.fallbackReason) fallbacks.inc({ reason: result.fallbackReason.code });
      if (result.cached.caption) cacheHits.inc({ kind: 'caption' });
      if (result.cached.imageEmbeddings) cacheHits.inc({ kind: 'image_embeddings' });
    },
    observeQueue(state) {
      queueDepth.set(state.waiting);
      inFlight.set(state.running);
    },
    observeReject(reason) {
      rejects.inc({ reason });
    },
    observeCircuit(state, options: { initial?: boolean } = {}) {
      circuit.set(state === 'closed' ? 0 : state === 'half-open' ? 1 : 2);
      circuitChanges.inc({ state }, options.initial ? 0 : 1);
    },
  };
}
