import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { BaseChatModel } from '@langchain/core/language_models/chat_models';
import fastifyMultipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { VqaChainOptions } from '../../chains/types.js';
import { createVqaChain, type VqaChain } from '../../chains/vqa-chain.js';
import { InvalidOptionError } from '../errors/index.js';
import { packageRoot } from '../paths.js';
import type { VisionModels } from '../types.js';
import { ApiError, toApiError } from './api-error.js';
import { defaultImageFetcher, type ImageFetcher } from './image-source.js';
import { createServerMetrics, type ServerMetrics } from './metrics.js';
import { createReadinessProbe, type ReadinessProbe } from './readiness.js';
import { createRequestQueue, type RequestQueue } from './request-queue.js';
import { registerChatCompletionsRoute } from './routes/chat-completions.js';
import { registerOperationsRoutes } from './routes/operations.js';
import { registerVqaRoute } from './routes/vqa.js';
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
  /** Replaces the downloader used when `allowImageUrls` is on (e.g. one that refuses private addresses). */
  fetchImage?: ImageFetcher;
  /** Largest request body in bytes. Default: a 20 MiB image as a base64 data URL, plus 1 MiB. */
  bodyLimitBytes?: number;
  /** Largest image in bytes, uploaded or decoded from a data URL. Default 20 MiB. */
  maxImageBytes?: number;
  /** Requests answered at once; the rest wait in arrival order. Default 4. */
  maxConcurrency?: number;
  /** Default 64. */
  maxMessages?: number;
  /** Largest `top_k` a request may ask for. Default 20. */
  maxTopK?: number;
  /** Serve the demo page at `/`. Default true. */
  web?: boolean;
  /** Structured JSON logs (pino): `false` for none; `stream` to send them elsewhere than stdout. Default `{ level: 'info' }`. */
  logger?: false | { level?: string; stream?: NodeJS.WritableStream };
  /** `close()` also disposes the vision models. Default false. */
  disposeVision?: boolean;
}

/** What the routes share. */
export interface ServerContext {
  chain: VqaChain;
  vision: VisionModels;
  metrics: ServerMetrics;
  queue: RequestQueue;
  readiness: ReadinessProbe;
  settings: ResolvedServerSettings;
  llmName: string | null;
}

export interface ResolvedServerSettings {
  modelName: string;
  allowImageUrls: boolean;
  fetchImage: ImageFetcher;
  bodyLimitBytes: number;
  maxImageBytes: number;
  maxConcurrency: number;
  maxMessages: number;
  maxTopK: number;
  web: boolean;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError('invalid_value', `${name} must be a positive integer, got ${String(value)}.`);
  return value;
}

function resolveSettings(options: VqaServerOptions): ResolvedServerSettings {
  const modelName = options.modelName ?? SERVER_DEFAULTS.modelName;
  if (typeof modelName !== 'string' || !/^[\w.:/-]{1,100}$/.test(modelName)) {
    throw new InvalidOptionError('invalid_value', `modelName must be 1-100 letters, digits or . _ : / -, got ${JSON.stringify(modelName)}.`);
  }
  return {
    modelName,
    allowImageUrls: options.allowImageUrls ?? SERVER_DEFAULTS.allowImageUrls,
    fetchImage: options.fetchImage ?? defaultImageFetcher,
    bodyLimitBytes: positiveInteger('bodyLimitBytes', options.bodyLimitBytes ?? SERVER_DEFAULTS.bodyLimitBytes),
    maxImageBytes: positiveInteger('maxImageBytes', options.maxImageBytes ?? SERVER_DEFAULTS.maxImageBytes),
    maxConcurrency: positiveInteger('maxConcurrency', options.maxConcurrency ?? SERVER_DEFAULTS.maxConcurrency),
    maxMessages: positiveInteger('maxMessages', options.maxMessages ?? SERVER_DEFAULTS.maxMessages),
    maxTopK: positiveInteger('maxTopK', options.maxTopK ?? SERVER_DEFAULTS.maxTopK),
    web: options.web ?? SERVER_DEFAULTS.web,
  };
}

// Only the request line's shape goes to the logs: never bodies, never headers (authorization), a bounded URL.
function serializeRequest(request: FastifyRequest): Record<string, unknown> {
  return { method: request.method, url: request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url, remoteAddress: request.ip };
}

/**
 * Builds the HTTP server (not yet listening): an OpenAI-compatible `/v1/chat/completions` (JSON and SSE),
 * `/v1/models`, the native `/v1/vqa` (multipart or JSON), `/healthz`, `/readyz`, `/metrics`, and the demo page at `/`.
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
  const metrics = createServerMetrics();
  const queue = createRequestQueue({ concurrency: settings.maxConcurrency, onChange: (state) => metrics.observeQueue(state) });
  const chain = createVqaChain({ ...options.chainOptions, vision: options.vision, llm: options.llm });
  const llmName = chain.options.llm === 'none' ? null : ((chain.options.llm as { model?: string }).model ?? chain.options.llm.getName());
  const context: ServerContext = { chain, vision: options.vision, metrics, queue, readiness: createReadinessProbe(options.vision), settings, llmName };

  const loggerOptions = options.logger === false ? false : { level: options.logger?.level ?? SERVER_DEFAULTS.logLevel, ...(options.logger?.stream ? { stream: options.logger.stream } : {}), serializers: { req: serializeRequest } };
  const app = Fastify({
    logger: loggerOptions,
    bodyLimit: settings.bodyLimitBytes,
    // Request ids make a client's report findable in the logs without logging anything the client sent.
    genReqId: () => `req-${Math.random().toString(36).slice(2, 10)}`,
    return503OnClosing: true,
  });

  // JSON and multipart only: a text/plain body would otherwise reach the routes as a string.
  app.removeContentTypeParser('text/plain');
  await app.register(fastifyMultipart, {
    limits: { fileSize: settings.maxImageBytes, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 20, headerPairs: 100 },
  });

  app.setErrorHandler((error, request, reply) => {
    const apiError = toApiError(error);
    if (apiError.status >= 500) request.log.error({ err: error }, 'request failed');
    // Our messages describe the input without quoting it; the original (framework) error may quote the body.
    else request.log.info({ code: apiError.code, status: apiError.status }, apiError.message);
    if (apiError.status < 500) metrics.observeReject(apiError.code);
    if (reply.sent || reply.raw.headersSent) return;
    void reply.status(apiError.status).send(apiError.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError(404, 'not_found', `No route for ${request.method} ${request.url.split('?')[0]!.slice(0, 100)}.`);
    void reply.status(404).send(error.toBody());
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest({ method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode }, reply.elapsedTime / 1000);
  });
  if (options.disposeVision) app.addHook('onClose', async () => options.vision.dispose());

  registerChatCompletionsRoute(app, context);
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

export interface RunningVqaServer {
  app: FastifyInstance;
  /** `http://host:port`, with the port the OS picked when asked for port 0. */
  url: string;
  close(): Promise<void>;
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
  return { app, url: `http://${host}:${address.port}`, close: () => app.close() };
}
