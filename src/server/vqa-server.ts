import { createServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { VqaChainOptions } from '../../chains/types.js';
import { createVqaChain } from '../../chains/vqa-chain.js';
import { InvalidOptionError } from '../errors/index.js';
import { createCircuitBreaker, type CircuitBreakerOptions } from '../llm/circuit-breaker.js';
import type { UrlPolicy } from '../net/safe-fetch.js';
import { packageRoot } from '../paths.js';
import type { VisionModels } from '../types.js';
import { ApiError, toApiError } from './api-error.js';
import { hardenImageDecoders } from './image-guard.js';
import { createImageFetcher, type ImageFetcher } from './image-source.js';
import { createServerMetrics } from './metrics.js';
import { createReadinessProbe } from './readiness.js';
import { createRequestQueue } from './request-queue.js';
import { registerChatCompletionsRoute } from './routes/chat-completions.js';
import { registerOperationsRoutes } from './routes/operations.js';
import { registerResponsesRoute } from './routes/responses.js';
import { registerVqaRoute } from './routes/vqa.js';
import { serverBusy, shuttingDown, type ResolvedServerSettings, type ServerContext } from './server-context.js';
import { registerAccessControl } from './access-control.js';
import { registerJsonBodyParser } from './json-body.js';
import { SERVER_DEFAULTS } from './server-defaults.js';

export interface VqaServerOptions {
  /** The vision side, from `createVisionModels(...)`. The server does not dispose it unless `disposeVision` is set. */
  vision: VisionModels;
  /** Any LangChain chat model, or `'none'` to answer with the top VQA candidate. */
  llm: BaseChatModel | 'none';
  /** The rest of the chain's options (topK, llmTimeoutMs, captionOptions...). */
  chainOptions?: Omit<VqaChainOptions, 'vision' | 'llm'>;
  /** Listed by `/v1/models`; requests must name it. Default `vqa-llm`. */
  modelName?: string;
  /** Accept http(s) image URLs and download them. Default false: data URLs and uploads only. */
  allowImageUrls?: boolean;
  /**
   * Where image URLs may lead when `allowImageUrls` is on: https only, public addresses only, 3 re-checked redirects,
   * by default. `allowHttp`, `allowedHosts`, timeouts can be set here.
   */
  imageUrlPolicy?: UrlPolicy;
  /** Replaces the downloader used when `allowImageUrls` is on; the default is the SSRF-safe one with `imageUrlPolicy`. */
  fetchImage?: ImageFetcher;
  /** Largest request body in bytes. Default: a 20 MiB image as a base64 data URL, plus 1 MiB. */
  bodyLimitBytes?: number;
  /** Largest image in bytes, uploaded or decoded from a data URL. Default 20 MiB. */
  maxImageBytes?: number;
  /** Requests answered at once; the rest wait in arrival order. Default 4. */
  maxConcurrency?: number;
  /** Requests that may wait beyond those in flight; past them, 503 with Retry-After at once. Default 32. */
  maxQueue?: number;
  /** Retry-After on 503s, in seconds. Default 1. */
  retryAfterSeconds?: number;
  /** Deadline of one request, queue wait included: queued work past it gets 503, running work is aborted (504). Default 60000. */
  requestTimeoutMs?: number;
  /** Node's headersTimeout (slow headers are cut with 408). Default 10000. */
  headersTimeoutMs?: number;
  /** Node's requestTimeout: the whole body must arrive within this. Default 30000. */
  bodyTimeoutMs?: number;
  /** Idle keep-alive connections are closed after this. Default 5000. */
  keepAliveTimeoutMs?: number;
  /** Default 64. */
  maxMessages?: number;
  /** Largest `top_k` a request may ask for. Default 20. */
  maxTopK?: number;
  /** Longest question in characters, checked before the image is read. Default 1000. */
  maxQuestionLength?: number;
  /** Largest width x height, read from the header before the request is queued. Default 40 000 000. */
  maxImagePixels?: number;
  /** Largest long side / short side. Default 32. */
  maxImageAspectRatio?: number;
  /** Most frames (GIF, WebP) or pages (TIFF) a container may declare; only the first is decoded. Default 1000. */
  maxImageFrames?: number;
  /**
   * The LLM's circuit breaker: after `failureThreshold` endpoint failures in a row (default 5) the LLM is skipped
   * (answers fall back at once with `llm_circuit_open`) for `resetTimeoutMs` (default 30000), then one probe call
   * decides. `false` turns it off.
   */
  llmCircuitBreaker?: Pick<CircuitBreakerOptions, 'failureThreshold' | 'resetTimeoutMs'> | false;
  /** Progressive JPEG scans an image may hold, counted from the bytes before the request is queued. Default 100. */
  maxJpegScans?: number;
  /** Deepest nesting of objects and arrays in a JSON body. Default 64. */
  maxJsonDepth?: number;
  /** Longest assistant turn of a conversation's history, in characters; earlier questions have `maxQuestionLength`. Default 4000. */
  maxAnswerTurnLength?: number;
  /** Open connections at once; more are closed on arrival. Default 512. */
  maxConnections?: number;
  /**
   * API keys: when any is set, every route but `/healthz` and `/readyz` needs `Authorization: Bearer <key>`
   * (compared in constant time). Default none.
   */
  apiKeys?: readonly string[];
  /**
   * Host names (with or without port) a request's `Host` header may name; anything else is 403; `*` accepts any.
   * Default: when bound to a loopback address, `localhost`, `127.0.0.1` and `[::1]` only (DNS rebinding); otherwise any.
   */
  allowedHosts?: readonly string[];
  /** Origins allowed to call from a browser page (CORS), or `*`. Default none: CORS is off and cross-site posts are refused. */
  corsOrigins?: readonly string[];
  /** Serve the demo page at `/`. Default true. */
  web?: boolean;
  /** Structured JSON logs (pino): `false` for none; `stream` to send them elsewhere than stdout. Default `{ level: 'info' }`. */
  logger?: false | { level?: string; stream?: NodeJS.WritableStream };
  /** `close()` also disposes the vision models. Default false. */
  disposeVision?: boolean;
}

// Re-exported: callers imported them from here before they had a file of their own.
export { serverBusy, type ResolvedServerSettings, type ServerContext };

function positiveInteger(name: string, value: number, minimum = 1): number {
  if (!Number.isInteger(value) || value < minimum) throw new InvalidOptionError('invalid_value', `${name} must be an integer of at least ${minimum}, got ${String(value)}.`);
  return value;
}

function stringList(name: string, values: readonly string[] | undefined, pattern: RegExp, what: string): readonly string[] {
  if (values === undefined) return [];
  if (!Array.isArray(values)) throw new InvalidOptionError('invalid_value', `${name} must be an array of strings.`);
  for (const value of values) {
    // Never echo a key: say which entry is wrong, not what it holds.
    if (typeof value !== 'string' || !pattern.test(value)) throw new InvalidOptionError('invalid_value', `${name}[${values.indexOf(value)}] is not valid: ${name} must be ${what}.`);
  }
  return [...values];
}

function resolveSettings(options: VqaServerOptions): ResolvedServerSettings {
  const modelName = options.modelName ?? SERVER_DEFAULTS.modelName;
  if (typeof modelName !== 'string' || !/^[\w.:/-]{1,100}$/.test(modelName)) {
    throw new InvalidOptionError('invalid_value', `modelName must be 1-100 letters, digits or . _ : / -, got ${JSON.stringify(modelName)}.`);
  }
  return {
    modelName,
    allowImageUrls: options.allowImageUrls ?? SERVER_DEFAULTS.allowImageUrls,
    fetchImage: options.fetchImage ?? createImageFetcher(options.imageUrlPolicy),
    bodyLimitBytes: positiveInteger('bodyLimitBytes', options.bodyLimitBytes ?? SERVER_DEFAULTS.bodyLimitBytes),
    maxImageBytes: positiveInteger('maxImageBytes', options.maxImageBytes ?? SERVER_DEFAULTS.maxImageBytes),
    maxConcurrency: positiveInteger('maxConcurrency', options.maxConcurrency ?? SERVER_DEFAULTS.maxConcurrency),
    maxQueue: positiveInteger('maxQueue', options.maxQueue ?? SERVER_DEFAULTS.maxQueue, 0),
    retryAfterSeconds: positiveInteger('retryAfterSeconds', options.retryAfterSeconds ?? SERVER_DEFAULTS.retryAfterSeconds),
    requestTimeoutMs: positiveInteger('requestTimeoutMs', options.requestTimeoutMs ?? SERVER_DEFAULTS.requestTimeoutMs),
    headersTimeoutMs: positiveInteger('headersTimeoutMs', options.headersTimeoutMs ?? SERVER_DEFAULTS.headersTimeoutMs),
    bodyTimeoutMs: positiveInteger('bodyTimeoutMs', options.bodyTimeoutMs ?? SERVER_DEFAULTS.bodyTimeoutMs),
    keepAliveTimeoutMs: positiveInteger('keepAliveTimeoutMs', options.keepAliveTimeoutMs ?? SERVER_DEFAULTS.keepAliveTimeoutMs),
    maxMessages: positiveInteger('maxMessages', options.maxMessages ?? SERVER_DEFAULTS.maxMessages),
    maxTopK: positiveInteger('maxTopK', options.maxTopK ?? SERVER_DEFAULTS.maxTopK),
    maxQuestionLength: positiveInteger('maxQuestionLength', options.maxQuestionLength ?? SERVER_DEFAULTS.maxQuestionLength),
    maxImagePixels: positiveInteger('maxImagePixels', options.maxImagePixels ?? SERVER_DEFAULTS.maxImagePixels),
    maxImageAspectRatio: positiveInteger('maxImageAspectRatio', options.maxImageAspectRatio ?? SERVER_DEFAULTS.maxImageAspectRatio),
    maxImageFrames: positiveInteger('maxImageFrames', options.maxImageFrames ?? SERVER_DEFAULTS.maxImageFrames),
    maxJpegScans: positiveInteger('maxJpegScans', options.maxJpegScans ?? SERVER_DEFAULTS.maxJpegScans),
    maxJsonDepth: positiveInteger('maxJsonDepth', options.maxJsonDepth ?? SERVER_DEFAULTS.maxJsonDepth),
    maxAnswerTurnLength: positiveInteger('maxAnswerTurnLength', options.maxAnswerTurnLength ?? SERVER_DEFAULTS.maxAnswerTurnLength),
    maxConnections: positiveInteger('maxConnections', options.maxConnections ?? SERVER_DEFAULTS.maxConnections),
    apiKeys: stringList('apiKeys', options.apiKeys, /^[\x21-\x7e]{16,256}$/, 'printable ASCII without spaces, 16-256 characters'),
    ...(options.allowedHosts ? { allowedHosts: stringList('allowedHosts', options.allowedHosts, /^(\*|(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d+)?)$/i, 'host names or addresses, optionally with a port, or *') } : {}),
    corsOrigins: stringList('corsOrigins', options.corsOrigins, /^(\*|https?:\/\/[^/\s]+)$/i, 'origins such as https://app.example.com, or *'),
    web: options.web ?? SERVER_DEFAULTS.web,
  };
}

/** How long closing waits for model work still running before it disposes the models anyway. */
const CLOSE_WORK_WAIT_MS = 10_000;

/** The routes that run the models: refused at capacity or while draining before their body is read. */
const MODEL_ROUTES = new Set(['/v1/chat/completions', '/v1/responses', '/v1/vqa']);

// Only the request line's shape goes to the logs: never bodies, never headers (authorization), a bounded URL.
function serializeRequest(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url, remoteAddress: request.ip };
}

/**
 * Builds the HTTP server (not yet listening): OpenAI-compatible `/v1/chat/completions` and `/v1/responses` (JSON
 * and SSE), `/v1/models`, the native `/v1/vqa` (multipart or JSON), `/healthz`, `/readyz`, `/metrics`, and the demo page at `/`.
 *
 * @throws {InvalidOptionError} for a bad option, naming it.
 *
 * @example
 * ```ts
 * const vision = await createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle' });
 * const app = await createVqaServer({ vision, llm: 'none' });
 * await app.listen({ host: '127.0.0.1', port: 8080 });
 * ```
 */
export async function createVqaServer(options: VqaServerOptions): Promise<FastifyInstance> {
  const settings = resolveSettings(options);
  hardenImageDecoders();
  const metrics = createServerMetrics();
  const queue = createRequestQueue({ concurrency: settings.maxConcurrency, maxWaiting: settings.maxQueue, onChange: (state) => metrics.observeQueue(state) });
  const breaker =
    options.llm === 'none' || options.llmCircuitBreaker === false
      ? undefined
      : createCircuitBreaker({
          failureThreshold: options.llmCircuitBreaker?.failureThreshold ?? SERVER_DEFAULTS.llmFailureThreshold,
          resetTimeoutMs: options.llmCircuitBreaker?.resetTimeoutMs ?? SERVER_DEFAULTS.llmCircuitResetMs,
          onStateChange: (state) => metrics.observeCircuit(state),
        });
  if (breaker) metrics.observeCircuit('closed', { initial: true });
  const chain = createVqaChain({ ...options.chainOptions, vision: options.vision, llm: options.llm, ...(breaker ? { llmCircuitBreaker: breaker } : {}) });
  const llmName = chain.options.llm === 'none' ? null : ((chain.options.llm as { model?: string }).model ?? chain.options.llm.getName());
  // Header checks run before a request takes a slot, but decode work of their own (sharp reads every TIFF directory,
  // every JPEG marker): they get as many slots of their own as the models, so that a flood of them cannot fill the
  // decoder's thread pool ahead of admitted work.
  const headerChecks = createRequestQueue({ concurrency: settings.maxConcurrency, maxWaiting: settings.maxConcurrency + settings.maxQueue });
  const context: ServerContext = {
    chain,
    vision: options.vision,
    metrics,
    queue,
    headerChecks,
    readiness: createReadinessProbe(options.vision),
    settings,
    llmName,
    inFlight: new Set(),
    ...(breaker ? { breaker } : {}),
  };

  const loggerOptions = options.logger === false ? false : { level: options.logger?.level ?? SERVER_DEFAULTS.logLevel, ...(options.logger?.stream ? { stream: options.logger.stream } : {}), serializers: { req: serializeRequest } };
  const app = Fastify({
    logger: loggerOptions,
    bodyLimit: settings.bodyLimitBytes,
    // Node's own limits on slow clients; connectionsCheckingInterval is how often they are enforced (default 30 s).
    serverFactory: (handler) =>
      createServer(
        {
          headersTimeout: settings.headersTimeoutMs,
          requestTimeout: Math.max(settings.bodyTimeoutMs, settings.headersTimeoutMs),
          keepAliveTimeout: settings.keepAliveTimeoutMs,
          connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(settings.headersTimeoutMs / 2))),
        },
        handler,
      ),
    // Request ids make a client's report findable in the logs without logging anything the client sent.
    genReqId: () => `req-${Math.random().toString(36).slice(2, 10)}`,
    return503OnClosing: true,
  });

  app.server.maxConnections = settings.maxConnections;
  // JSON and multipart only: a text/plain body would otherwise reach the routes as a string.
  app.removeContentTypeParser('text/plain');
  registerJsonBodyParser(app, { maxDepth: settings.maxJsonDepth });
  await app.register(fastifyMultipart, {
    limits: { fileSize: settings.maxImageBytes, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 20, headerPairs: 100 },
  });

  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    // A 503 (busy, draining) or 504 is the server doing its job under load: one short line each, never a stack,
    // so that a flood of refusals does not become a flood of logs.
    if (apiError.status >= 500 && apiError.status !== 503 && apiError.status !== 504) request.log.error({ err: error }, 'request failed');
    // Our messages describe the input without quoting it; the original (framework) error may quote the body.
    else request.log.info({ code: apiError.code, status: apiError.status }, apiError.message);
    if (apiError.status < 500 || apiError.status === 503) metrics.observeReject(apiError.code);
    if (reply.sent || reply.raw.headersSent) return;
    if (apiError.retryAfterSeconds !== undefined) void reply.header('retry-after', String(apiError.retryAfterSeconds));
    void reply.status(apiError.status).send(apiError.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError(404, 'not_found', `No route for ${request.method} ${request.url.split('?')[0]!.slice(0, 100)}.`);
    void reply.status(404).send(error.toBody());
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode }, reply.elapsedTime / 1000);
  });
  if (options.disposeVision) app.addHook('onClose', async () => {
    // Disposing ends the models' worker threads, and a thread ended in the middle of an inference takes the process
    // down (onnxruntime's native error): the startup probe and the work still holding slots (a decode or graph past
    // its request's deadline) finish first, for at most CLOSE_WORK_WAIT_MS.
    const giveUpAt = Date.now() + CLOSE_WORK_WAIT_MS;
    await Promise.race([context.readiness.settled(), new Promise((resolve) => setTimeout(resolve, CLOSE_WORK_WAIT_MS).unref())]);
    while (queue.state.running > 0 && Date.now() < giveUpAt) await new Promise((resolve) => setTimeout(resolve, 20));
    await options.vision.dispose();
  });
  registerAccessControl(app, settings);
  // Refused before the body is read: at capacity a 20 MB upload costs the server nothing but this answer. The route
  // is the one the router matched (percent-encoding, `#`, `//` and the like already resolved), not the raw URL. A
  // request counts from here, while its body arrives, until its response closes: bodies being read are bounded too.
  let admitted = 0;
  const admissionLimit = settings.maxConcurrency + settings.maxQueue;
  app.addHook('onRequest', async (request, reply) => {
    if (request.method !== 'POST' || !MODEL_ROUTES.has(request.routeOptions.url ?? '')) return;
    if (context.readiness.draining) throw shuttingDown(settings);
    if (admitted >= admissionLimit || queue.full) throw serverBusy(settings);
    admitted += 1;
    reply.raw.once('close', () => {
      admitted -= 1;
    });
  });

  registerChatCompletionsRoute(app, context);
  registerResponsesRoute(app, context);
  registerVqaRoute(app, context);
  registerOperationsRoutes(app, context);
  if (settings.web) {
    await app.register(fastifyStatic, { root: join(packageRoot(), 'web'), prefix: '/', index: 'index.html', cacheControl: false });
  }
  // Readiness starts probing now, so that /readyz turns ready without waiting for a first caller.
  void context.readiness.check();
  app.decorate('vqaContext', context);
  return app;
}

/** How long the 503s sent at the end of the grace period may take to reach their clients before connections are cut. */
const SHUTDOWN_FLUSH_MS = 2_000;

export interface RunningVqaServer {
  app: FastifyInstance;
  /** `http://host:port`, with the port the OS picked when asked for port 0. */
  url: string;
  close(): Promise<void>;
  /**
   * Graceful stop (SIGTERM): readiness fails, the port stops accepting, requests already accepted (queued ones too)
   * finish; those still running after `graceMs` have their connections cut. `drained` says whether all finished.
   */
  shutdown(options?: { graceMs?: number }): Promise<{ drained: boolean }>;
}

/**
 * @example
 * ```ts
 * process.once('SIGTERM', async () => {
 *   const { drained } = await shutdownVqaServer(app, { graceMs: 25_000 });
 *   process.exit(0);
 * });
 * ```
 */
export async function shutdownVqaServer(app: FastifyInstance, options: { graceMs?: number } = {}): Promise<{ drained: boolean }> {
  const graceMs = options.graceMs ?? SERVER_DEFAULTS.shutdownGraceMs;
  const context = (app as unknown as { vqaContext: ServerContext }).vqaContext;
  context.readiness.setDraining(true);
  let timer: NodeJS.Timeout | undefined;
  const closed = app.close().then(() => true);
  const grace = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), graceMs);
  });
  const drained = await Promise.race([closed, grace]);
  clearTimeout(timer);
  if (!drained) {
    // Past the grace period: every request still waiting or running is stopped and answered 503 (retry elsewhere),
    // then what is still open is cut so that close() can finish and the process can exit.
    const stopped = [...context.inFlight].map((stop) => stop());
    let flushTimer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(stopped), new Promise((resolve) => (flushTimer = setTimeout(resolve, SHUTDOWN_FLUSH_MS)))]);
    clearTimeout(flushTimer);
    app.server.closeAllConnections();
    await closed;
  }
  return { drained };
}

/**
 * Builds the server and listens. Bind to 127.0.0.1 (the default) unless a proxy in front of it does TLS and limits.
 *
 * @example
 * ```ts
 * const server = await startVqaServer({ vision, llm: 'none', host: '127.0.0.1', port: 0 });
 * const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
 * await server.close();
 * ```
 */
export async function startVqaServer(options: VqaServerOptions & { host?: string; port?: number }): Promise<RunningVqaServer> {
  const app = await createVqaServer(options);
  await app.listen({ host: options.host ?? SERVER_DEFAULTS.host, port: options.port ?? SERVER_DEFAULTS.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { app, url: `http://${host}:${address.port}`, close: () => app.close(), shutdown: (shutdownOptions) => shutdownVqaServer(app, shutdownOptions) };
}
