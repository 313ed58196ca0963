import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EvalWorkerEvent } from './eval-worker.js';
import { parseQueueUrl } from './queue-settings.js';
import { openRedis, type RedisClient } from './redis-client.js';
import { registerSharedCacheMetrics } from './shared-cache-metrics.js';
import { WORKER_HEALTH_DEFAULTS } from './worker-defaults.js';

/** One part of a worker's readiness, as `/readyz` reports it. */
export interface WorkerCheck {
  ready: boolean;
  /** Why not: `loading`, `probe inference failed: ...`, `queue unreachable: ...`. */
  reason?: string;
}

/** What `/readyz` answers (200 when `ready`, else 503). */
export interface WorkerReadiness extends WorkerCheck {
  status: 'ready' | 'not_ready';
  /** `draining` (after SIGTERM) comes before the checks' own reasons. */
  checks: { models: WorkerCheck; queue: WorkerCheck };
}

/** What `modelsLoaded` takes: `createReadinessProbe(vision)` (src/server/readiness.ts), a tiny inference once. */
export interface ModelReadiness {
  check(): Promise<WorkerCheck>;
}

export interface WorkerHealthOptions {
  /** Port to listen on; 0 takes any free one (read it from `port` or `url`). */
  port: number;
  /** Address to bind. Default `127.0.0.1`, as `vqa-llm serve`; `0.0.0.0` in a pod, so that the kubelet reaches it. */
  host?: string;
  /** The worker's queue URL (as `--queue` takes it): `/readyz` pings that Redis. */
  queue: string;
  /** The flag the queue URL came from, for messages. Default `queue`. */
  source?: string;
  /** How long a ping may take before the queue counts as unreachable. Default 500 ms (a kubelet probe gives up after 1 s). */
  pingTimeoutMs?: number;
  /** Node.js process metrics (`process_*`, `nodejs_*`) on `/metrics`. Default true. */
  defaultMetrics?: boolean;
}

/** A worker's health endpoint: liveness, readiness and Prometheus metrics on a port of their own. */
export interface WorkerHealth {
  /** `http://host:port`. */
  readonly url: string;
  readonly port: number;
  readonly registry: Registry;
  /** The models have loaded and the worker takes jobs: readiness asks `probe` from now on. */
  modelsLoaded(probe: ModelReadiness): void;
  /** Counts a worker event: pass it on from `startEvalWorker`'s `onEvent`. */
  observe(event: EvalWorkerEvent): void;
  /** SIGTERM: `/readyz` says `draining` from now on, while the jobs in hand finish. Liveness stays up. */
  setDraining(): void;
  readiness(): Promise<WorkerReadiness>;
  /** Stops listening (open connections are cut) and closes the ping connection. */
  close(): Promise<void>;
}

export { WORKER_HEALTH_DEFAULTS };

/** The routes, for orchestrator manifests (deploy/kubernetes/worker.yaml) to point at. */
export const WORKER_HEALTH_PATHS = { liveness: '/healthz', readiness: '/readyz', metrics: '/metrics' } as const;

// A job is one question or an image's questions (up to 64): milliseconds with tiny models, minutes with full-size ones.
const JOB_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

interface WorkerMetrics {
  registry: Registry;
  observe(event: EvalWorkerEvent): void;
}

function createWorkerMetrics(defaultMetrics: boolean): WorkerMetrics {
  const registry = new Registry();
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  // The vision encoder runs and shared-cache outcomes, under the names `vqa-llm serve` uses for them.
  registerSharedCacheMetrics(registry);
  const counter = (name: string, help: string): Counter => new Counter({ name, help, registers: [registry] });
  const questionsStarted = counter('vqa_llm_worker_questions_started_total', 'Questions this worker began answering.');
  const questionsAbandoned = counter('vqa_llm_worker_questions_abandoned_total', 'Questions begun whose answer the queue did not take (lock lost, image unavailable, forced close): asked again.');
  const questionsFinished = counter('vqa_llm_worker_questions_finished_total', 'Questions whose answer the queue acknowledged, refused ones included.');
  const questionsFailed = counter(
    'vqa_llm_worker_questions_failed_total',
    'Finished questions the pipeline refused (a bad or missing image): recorded as failed questions.',
  );
  const jobsStarted = counter('vqa_llm_worker_jobs_started_total', 'Jobs this worker took from the queue (one per image, or one per question from older producers).');
  const jobsFinished = counter('vqa_llm_worker_jobs_finished_total', 'Jobs whose answers the queue acknowledged.');
  const jobsActive = new Gauge({ name: 'vqa_llm_worker_jobs_active', help: 'Jobs in hand now.', registers: [registry] });
  const questionsActive = new Gauge({ name: 'vqa_llm_worker_questions_active', help: 'Questions begun and not yet acknowledged.', registers: [registry] });
  const seconds = new Histogram({
    name: 'vqa_llm_worker_job_duration_seconds',
    help: "From a job's first question begun to its answers acknowledged.",
    buckets: JOB_BUCKETS,
    registers: [registry],
  });
  // Events come per question: an image job's questions begin one by one and are acknowledged together.
  const inHand = new Map<string, { since: number; questions: Set<string> }>();
  const update = (): void => {
    jobsActive.set(inHand.size);
    questionsActive.set([...inHand.values()].reduce((total, job) => total + job.questions.size, 0));
  };
  return {
    registry,
    observe(event) {
      const question = String(event.questionId);
      let job = inHand.get(event.jobId);
      if (event.type === 'started') {
        questionsStarted.inc();
        if (!job) {
          jobsStarted.inc();
          job = { since: performance.now(), questions: new Set() };
          inHand.set(event.jobId, job);
        }
        job.questions.add(question);
      } else {
        // Abandoned (the queue refused the answer, or the image was unavailable): no longer in hand, not finished.
        if (event.type === 'abandoned') questionsAbandoned.inc();
        else {
          questionsFinished.inc();
          if (event.failed) questionsFailed.inc();
        }
        job?.questions.delete(question);
        if (job && job.questions.size === 0) {
          if (event.type === 'finished') {
            jobsFinished.inc();
            seconds.observe((performance.now() - job.since) / 1000);
          }
          inHand.delete(event.jobId);
        }
      }
      update();
    },
  };
}

/** Pings the queue's Redis on its own connection, so that a probe never waits behind BullMQ's blocking commands. */
function createQueuePing(client: RedisClient, timeoutMs: number): () => Promise<WorkerCheck> {
  let running: Promise<WorkerCheck> | undefined;
  const ping = async (): Promise<WorkerCheck> => {
    // Not connected: say so at once (a ping would only fail with "Stream isn't writeable").
    if (client.status !== 'ready') return { ready: false, reason: `queue unreachable: connection ${client.status}` };
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no reply within ${timeoutMs} ms`)), timeoutMs);
      });
      await Promise.race([client.ping(), timeout]);
      return { ready: true };
    } catch (error) {
      return { ready: false, reason: `queue unreachable: ${(error as Error)?.message ?? String(error)}` };
    } finally {
      clearTimeout(timer);
    }
  };
  // Concurrent probes share one ping.
  return () =>
    (running ??= ping().finally(() => {
      running = undefined;
    }));
}

function send(response: ServerResponse, status: number, body: string, contentType = 'application/json; charset=utf-8'): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
}

/**
 * Starts a `vqa-llm worker`'s health endpoint: `GET /healthz` (200 whenever the process answers: its event loop
 * turns), `GET /readyz` (200 once the models passed a tiny inference and the queue's Redis answers a ping; 503 with
 * a reason while loading, after SIGTERM, or while Redis is unreachable) and `GET /metrics` (Prometheus, a registry
 * of its own: `vqa_llm_worker_*` question and job counts, vision encoder runs, process metrics). It listens before the models
 * load, so liveness answers during a load that takes seconds. Built on node:http: a worker has no other use for a
 * web framework.
 *
 * @example
 * ```ts
 * const health = await startWorkerHealth({ port: 8081, host: '0.0.0.0', queue: 'redis://10.0.0.5:6379/0' });
 * const vision = await createVisionModels(options);
 * const worker = await startEvalWorker({ queue: 'redis://10.0.0.5:6379/0', chain, onEvent: (event) => health.observe(event) });
 * health.modelsLoaded(createReadinessProbe(vision));
 * process.once('SIGTERM', async () => {
 *   health.setDraining();
 *   await worker.close();
 *   await health.close();
 * });
 * ```
 */
export async function startWorkerHealth(options: WorkerHealthOptions): Promise<WorkerHealth> {
  const settings = parseQueueUrl(options.queue, options.source ?? 'queue');
  const metrics = createWorkerMetrics(options.defaultMetrics ?? true);
  const pingClient = await openRedis(settings.connection, { role: 'cache', commandTimeoutMs: options.pingTimeoutMs ?? WORKER_HEALTH_DEFAULTS.pingTimeoutMs });
  const pingQueue = createQueuePing(pingClient, options.pingTimeoutMs ?? WORKER_HEALTH_DEFAULTS.pingTimeoutMs);
  let models: ModelReadiness | undefined;
  let draining = false;

  const readiness = async (): Promise<WorkerReadiness> => {
    const [modelCheck, queueCheck] = await Promise.all([models ? models.check() : { ready: false, reason: 'loading' }, pingQueue()]);
    const checks = {
      models: { ready: modelCheck.ready, ...(modelCheck.reason === undefined ? {} : { reason: modelCheck.reason }) },
      queue: queueCheck,
    };
    const reason = draining ? 'draining' : [checks.models, checks.queue].find((check) => !check.ready)?.reason;
    const ready = !draining && checks.models.ready && checks.queue.ready;
    return { status: ready ? 'ready' : 'not_ready', ready, ...(reason === undefined ? {} : { reason }), checks };
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      send(response, 405, JSON.stringify({ error: { code: 'method_not_allowed', message: `${request.method} is not allowed here.` } }));
      return;
    }
    if (path === WORKER_HEALTH_PATHS.liveness) return send(response, 200, JSON.stringify({ status: 'ok' }));
    if (path === WORKER_HEALTH_PATHS.readiness) {
      const state = await readiness();
      return send(response, state.ready ? 200 : 503, JSON.stringify(state));
    }
    if (path === WORKER_HEALTH_PATHS.metrics) return send(response, 200, await metrics.registry.metrics(), metrics.registry.contentType);
    send(response, 404, JSON.stringify({ error: { code: 'not_found', message: `No route ${path}: try ${Object.values(WORKER_HEALTH_PATHS).join(', ')}.` } }));
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => send(response, 500, JSON.stringify({ error: { code: 'internal_error', message: (error as Error)?.message ?? String(error) } })));
  });
  // Probes send no body and wait a second or so: nothing legitimate is slow here.
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? WORKER_HEALTH_DEFAULTS.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    pingClient.disconnect();
    throw error;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    registry: metrics.registry,
    modelsLoaded(probe) {
      models = probe;
      // Starts the probe's inference now, so that readiness turns without waiting for a first caller.
      void probe.check();
    },
    observe: (event) => metrics.observe(event),
    setDraining() {
      draining = true;
    },
    readiness,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      pingClient.disconnect();
    },
  };
}
