// What the routes share with the server that registers them, in a file of its own so that the routes and
// vqa-server.ts do not import each other.
import type { VqaChain } from '../../chains/vqa-chain.js';
import type { CircuitBreaker } from '../llm/circuit-breaker.js';
import type { VisionModels } from '../types.js';
import { ApiError } from './api-error.js';
import type { ImageFetcher } from './image-source.js';
import type { ServerMetrics } from './metrics.js';
import type { ReadinessProbe } from './readiness.js';
import type { RequestQueue } from './request-queue.js';

/** The server's options with every default filled in; see `VqaServerOptions` for each. */
export interface ResolvedServerSettings {
  modelName: string;
  allowImageUrls: boolean;
  fetchImage: ImageFetcher;
  bodyLimitBytes: number;
  maxImageBytes: number;
  maxConcurrency: number;
  maxQueue: number;
  retryAfterSeconds: number;
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxMessages: number;
  maxTopK: number;
  maxQuestionLength: number;
  maxImagePixels: number;
  maxImageAspectRatio: number;
  maxImageFrames: number;
  maxJpegScans: number;
  maxJsonDepth: number;
  maxAnswerTurnLength: number;
  maxConnections: number;
  /** Empty: no key needed. */
  apiKeys: readonly string[];
  /** Host names (lower case, no port) a request's Host may name; undefined: any, or the loopback names on loopback. */
  allowedHosts?: readonly string[];
  /** Origins allowed to call from a browser (CORS); empty: none. */
  corsOrigins: readonly string[];
  web: boolean;
}

/** What the routes share. */
export interface ServerContext {
  chain: VqaChain;
  vision: VisionModels;
  metrics: ServerMetrics;
  queue: RequestQueue;
  /** Slots for the header checks that run before a request is queued. */
  headerChecks: RequestQueue;
  readiness: ReadinessProbe;
  settings: ResolvedServerSettings;
  llmName: string | null;
  breaker?: CircuitBreaker;
  /**
   * One entry per request whose scope is open: it stops the request with a 503 and resolves when its response has
   * closed. Used at the end of the shutdown grace period.
   */
  inFlight: Set<() => Promise<void>>;
}

/** The 503 of a server that is draining or whose grace period ended. */
export function shuttingDown(settings: ResolvedServerSettings, cause?: unknown): ApiError {
  return new ApiError(503, 'shutting_down', 'The server is shutting down; retry against another instance.', { retryAfterSeconds: settings.retryAfterSeconds, cause });
}

/** The 503 of a full queue: every slot busy, the waiting line full. */
export function serverBusy(settings: ResolvedServerSettings, cause?: unknown): ApiError {
  return new ApiError(503, 'server_busy', `The server is at capacity (${settings.maxConcurrency} in flight, ${settings.maxQueue} waiting); retry after ${settings.retryAfterSeconds} s.`, {
    retryAfterSeconds: settings.retryAfterSeconds,
    cause,
  });
}
