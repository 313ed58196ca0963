import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { CHAT_MODEL_DEFAULTS, resolveLlmProvider, type LlmProvider } from '../../llm/llm-provider.js';
import type { ChatLocalLlama } from '../../llm/local/chat-local-llama.js';
import { locateLocalModel } from '../../llm/local/local-model-path.js';
import { InvalidOptionError } from '../../errors/invalid-option-error.js';
import { VQA_CHAIN_DEFAULTS } from '../../../chains/defaults.js';
import { formatConfig, maskSecret, maskUrl, type ConfigEntry } from '../../server/describe-config.js';
import { SERVER_DEFAULTS } from '../../server/server-defaults.js';
import { addModelOptions, openVisionModels, parsePositiveInteger, type ModelCommandOptions } from '../shared.js';

interface ServeCommandOptions extends ModelCommandOptions {
  host: string;
  port: number;
  llm: LlmProvider;
  llmModel?: string;
  llmBaseUrl?: string;
  llmTimeout: number;
  topK: number;
  servedModelName: string;
  allowImageUrls?: boolean;
  bodyLimit: number;
  maxConcurrency: number;
  maxQueue: number;
  requestTimeout: number;
  shutdownGrace: number;
  imageUrlHosts?: string;
  allowHttpImageUrls?: boolean;
  logLevel: string;
  web: boolean;
  apiKey?: string[];
  apiKeyFile?: string;
  allowedHost?: string[];
  corsOrigin?: string[];
  maxConnections: number;
}

/** Repeatable options: each use adds one value; an env var holds a comma-separated list. */
function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function listFromEnv(name: string, env: NodeJS.ProcessEnv): string[] {
  return (env[name] ?? '').split(',').map((item) => item.trim()).filter(Boolean);
}

// One key a line; blank lines and # comments skipped. Read once at start: rotating keys means a restart.
function readKeyFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidOptionError('invalid_value', `--api-key-file ${path} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}).`, { cause: error });
  }
  const keys = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'));
  if (keys.length === 0) throw new InvalidOptionError('invalid_value', `--api-key-file ${path} holds no key (one key a line).`);
  return keys;
}

// Commander sets a boolean option from its env var whatever the value, so VAR=0 would turn it on; read them here.
function envFlag(name: string, env: NodeJS.ProcessEnv): boolean | undefined {
  const value = env[name]?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new InvalidOptionError('invalid_value', `${name} must be 1/true/yes or 0/false/no, got "${value}".`);
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('invalid_value', `--port must be 0-65535, got "${value}".`);
  return port;
}

/** A port or address that cannot be bound, as one line naming the flag to change. */
function listenError(error: unknown, options: ServeCommandOptions, portSource: string): unknown {
  const code = (error as { code?: unknown } | undefined)?.code;
  const where = `${options.host}:${options.port}`;
  const from = portSource === 'default' ? ' (the default)' : ` (from ${portSource})`;
  if (code === 'EADDRINUSE') {
    return new InvalidOptionError('invalid_value', `Port ${options.port} on ${options.host}${from} is already in use: another vqa-llm serve, or an LLM server, listens there.`, {
      hint: 'Pass --port N (or VQA_LLM_PORT), or --port 0 for any free port.',
      cause: error,
    });
  }
  if (code === 'EACCES') {
    return new InvalidOptionError('invalid_value', `Not allowed to listen on ${where}${from}.`, { hint: 'Ports below 1024 need privileges: pass --port 1024 or above.', cause: error });
  }
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') {
    return new InvalidOptionError('invalid_value', `Cannot listen on ${where}: ${options.host} is not an address of this machine.`, { hint: 'Pass --host 127.0.0.1 (or 0.0.0.0 for every interface).', cause: error });
  }
  return error;
}

function tryOr<T>(work: () => T, fallback: T): T {
  try {
    return work();
  } catch {
    return fallback;
  }
}

function sourceOf(command: Command, key: string, flag: string): string {
  const source = command.getOptionValueSource(key);
  if (source === 'cli') return flag;
  if (source === 'env') {
    const option = command.options.find((candidate) => candidate.attributeName() === key);
    return `env ${option?.envVar ?? '?'}`;
  }
  return 'default';
}

export function register(program: Command): void {
  const command = program
    .command('serve')
    .description('serve the pipeline over HTTP: OpenAI-compatible /v1/chat/completions, /v1/vqa, a demo page at /, /metrics')
    .addOption(new Option('--host <address>', 'address to bind; keep 127.0.0.1 unless a proxy in front does TLS and limits').env('VQA_LLM_HOST').default(SERVER_DEFAULTS.host))
    .addOption(new Option('--port <n>', 'port (0 = any free port)').env('VQA_LLM_PORT').default(SERVER_DEFAULTS.port).argParser(parsePort))
    .addOption(new Option('--llm <provider>', 'openai (any OpenAI-compatible endpoint), local (the embedded GGUF model, in this process), none (top VQA candidate), auto (openai when OPENAI_API_KEY or OPENAI_BASE_URL is set, else local when its model file is there, else none)').choices(['openai', 'local', 'none', 'auto']).env('VQA_LLM_PROVIDER').default('auto'))
    .addOption(new Option('--llm-model <name>', `openai: LLM model name (default ${CHAT_MODEL_DEFAULTS.model}); local: a .gguf path or a file name in --models`).env('VQA_LLM_MODEL'))
    .addOption(new Option('--llm-base-url <url>', 'OpenAI-compatible API base URL, e.g. http://127.0.0.1:11434/v1').env('OPENAI_BASE_URL'))
    .addOption(new Option('--llm-timeout <ms>', 'deadline of the LLM step, retries included; past it the answer falls back to VQA').env('VQA_LLM_LLM_TIMEOUT_MS').default(VQA_CHAIN_DEFAULTS.llmTimeoutMs).argParser(parsePositiveInteger('--llm-timeout')))
    .addOption(new Option('--top-k <n>', 'VQA candidates per question (requests may ask for up to 20 with top_k)').env('VQA_LLM_TOP_K').default(VQA_CHAIN_DEFAULTS.topK).argParser(parsePositiveInteger('--top-k')))
    .addOption(new Option('--served-model-name <name>', 'the model name /v1/models lists and requests must use').env('VQA_LLM_SERVED_MODEL').default(SERVER_DEFAULTS.modelName))
    .option('--allow-image-urls', 'download http(s) image URLs (off: data URLs and uploads only; env VQA_LLM_ALLOW_IMAGE_URLS)')
    .addOption(new Option('--body-limit <bytes>', 'largest request body').env('VQA_LLM_BODY_LIMIT').default(SERVER_DEFAULTS.bodyLimitBytes).argParser(parsePositiveInteger('--body-limit')))
    .addOption(new Option('--image-url-hosts <list>', 'with --allow-image-urls: comma-separated hosts images may come from (exact, or *.example.com)').env('VQA_LLM_IMAGE_URL_HOSTS'))
    .option('--allow-http-image-urls', 'with --allow-image-urls: accept plain http as well as https (env VQA_LLM_ALLOW_HTTP_IMAGE_URLS)')
    .addOption(new Option('--max-concurrency <n>', 'requests answered at once; the rest wait in order').env('VQA_LLM_MAX_CONCURRENCY').default(SERVER_DEFAULTS.maxConcurrency).argParser(parsePositiveInteger('--max-concurrency')))
    .addOption(new Option('--max-queue <n>', 'requests that may wait beyond those in flight; more get 503 with Retry-After').env('VQA_LLM_MAX_QUEUE').default(SERVER_DEFAULTS.maxQueue).argParser(parsePositiveInteger('--max-queue')))
    .addOption(new Option('--request-timeout <ms>', 'deadline of one request, queue wait included (503 while queued, 504 while running)').env('VQA_LLM_REQUEST_TIMEOUT_MS').default(SERVER_DEFAULTS.requestTimeoutMs).argParser(parsePositiveInteger('--request-timeout')))
    .addOption(new Option('--shutdown-grace <ms>', 'on SIGTERM/SIGINT, how long in-flight requests may finish before connections are cut').env('VQA_LLM_SHUTDOWN_GRACE_MS').default(SERVER_DEFAULTS.shutdownGraceMs).argParser(parsePositiveInteger('--shutdown-grace')))
    .addOption(new Option('--log-level <level>', 'JSON log level on stdout').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).env('VQA_LLM_LOG_LEVEL').default(SERVER_DEFAULTS.logLevel))
    .option('--no-web', 'do not serve the demo page at /')
    .option('--api-key <key>', 'require Authorization: Bearer <key> on every route but /healthz and /readyz; repeat for several keys (env VQA_LLM_API_KEYS, comma-separated)', collect)
    .addOption(new Option('--api-key-file <path>', 'file of API keys, one a line (# comments allowed)').env('VQA_LLM_API_KEY_FILE'))
    .option('--allowed-host <name>', 'a Host header the server answers to; repeat for several, * for any (default: loopback names when bound to loopback, else any; env VQA_LLM_ALLOWED_HOSTS)', collect)
    .option('--cors-origin <origin>', 'a browser origin allowed to call the API (CORS), e.g. https://app.example.com; repeat for several (default none; env VQA_LLM_CORS_ORIGINS)', collect)
    .addOption(new Option('--max-connections <n>', 'open connections at once; more are closed on arrival').env('VQA_LLM_MAX_CONNECTIONS').default(SERVER_DEFAULTS.maxConnections).argParser(parsePositiveInteger('--max-connections')))
    .addOption(new Option('--cache <url>', 'share captions and image embeddings with other replicas through Redis, e.g. redis://10.0.0.5:6379/0?ttl=3600 (see docs/scaling.md)').env('VQA_LLM_REDIS_URL'));
  addModelOptions(command).action(async (options: ServeCommandOptions, self: Command) => {
    // The server stack loads when the command runs, not when the CLI starts; one import at a time (see ../program.ts).
    const { createChatModel } = await import('../../llm/create-chat-model.js');
    const { ChatLocalLlama: LocalModel } = await import('../../llm/local/chat-local-llama.js');
    const { startVqaServer } = await import('../../server/vqa-server.js');
    const { deferVisionModels } = await import('../../runtime/deferred-vision-models.js');
    const { SAFE_FETCH_DEFAULTS } = await import('../../net/safe-fetch.js');
    const env = process.env;
    const allowImageUrls = options.allowImageUrls ?? envFlag('VQA_LLM_ALLOW_IMAGE_URLS', env) ?? SERVER_DEFAULTS.allowImageUrls;
    const allowHttpImageUrls = options.allowHttpImageUrls ?? envFlag('VQA_LLM_ALLOW_HTTP_IMAGE_URLS', env) ?? SAFE_FETCH_DEFAULTS.allowHttp;
    const imageUrlHosts = (options.imageUrlHosts ?? '').split(',').map((host) => host.trim()).filter(Boolean);
    const local = { localModel: options.llmModel, modelsDir: options.models };
    const provider = resolveLlmProvider(options.llm, env, local);
    const llm = createChatModel({ provider, model: options.llmModel, baseUrl: options.llmBaseUrl, env, ...local, threads: options.threads });
    // The local model loads before listening: a bad file is a startup error, not a fallback on every request.
    const localLlm = llm instanceof LocalModel ? await llm.load() : undefined;
    const llmModel = options.llmModel ?? env.VQA_LLM_MODEL ?? CHAT_MODEL_DEFAULTS.model;
    const apiKeys = [...(options.apiKey ?? listFromEnv('VQA_LLM_API_KEYS', env)), ...(options.apiKeyFile ? readKeyFile(options.apiKeyFile) : [])];
    const allowedHosts = options.allowedHost ?? listFromEnv('VQA_LLM_ALLOWED_HOSTS', env);
    const corsOrigins = options.corsOrigin ?? listFromEnv('VQA_LLM_CORS_ORIGINS', env);

    const entries: ConfigEntry[] = [
      { name: 'host', value: options.host, source: sourceOf(self, 'host', '--host') },
      { name: 'port', value: String(options.port), source: sourceOf(self, 'port', '--port') },
      { name: 'models dir', value: options.models ?? '(per-user data folder)', source: sourceOf(self, 'models', '--models') },
      { name: 'caption model', value: options.captionModel, source: sourceOf(self, 'captionModel', '--caption-model') },
      { name: 'vqa model', value: options.vqaModel, source: sourceOf(self, 'vqaModel', '--vqa-model') },
      {
        name: 'llm',
        value:
          provider === 'none'
            ? `none (answers are the top VQA candidate)${options.llm === 'auto' ? `; no local model at ${tryOr(() => locateLocalModel({ model: options.llmModel, modelsDir: options.models, env }).path, '(none)')}` : ''}`
            : localLlm
              ? `local, ${localLlm.name} (${localLlm.architecture}) from ${(llm as ChatLocalLlama).modelPath}, ${localLlm.sequences} sequences of ${localLlm.contextSize} tokens`
              : `openai-compatible, model ${llmModel}`,
        source: sourceOf(self, 'llm', '--llm'),
      },
    ];
    if (provider === 'openai') {
      entries.push(
        { name: 'llm base url', value: maskUrl(options.llmBaseUrl ?? CHAT_MODEL_DEFAULTS.baseUrl), source: sourceOf(self, 'llmBaseUrl', '--llm-base-url') },
        { name: 'OPENAI_API_KEY', value: maskSecret(env.OPENAI_API_KEY?.trim()), source: env.OPENAI_API_KEY ? 'env OPENAI_API_KEY' : 'default' },
        { name: 'llm timeout ms', value: String(options.llmTimeout), source: sourceOf(self, 'llmTimeout', '--llm-timeout') },
      );
    }
    entries.push(
      { name: 'served model name', value: options.servedModelName, source: sourceOf(self, 'servedModelName', '--served-model-name') },
      { name: 'top-k', value: String(options.topK), source: sourceOf(self, 'topK', '--top-k') },
      {
        name: 'image urls',
        value: allowImageUrls ? `allowed (${allowHttpImageUrls ? 'https and http' : 'https only'}, public addresses only${imageUrlHosts.length > 0 ? `, hosts ${imageUrlHosts.join(' ')}` : ''})` : 'refused (data URLs and uploads only)',
        source: options.allowImageUrls ? '--allow-image-urls' : env.VQA_LLM_ALLOW_IMAGE_URLS ? 'env VQA_LLM_ALLOW_IMAGE_URLS' : 'default',
      },
      { name: 'body limit bytes', value: String(options.bodyLimit), source: sourceOf(self, 'bodyLimit', '--body-limit') },
      { name: 'max concurrency', value: String(options.maxConcurrency), source: sourceOf(self, 'maxConcurrency', '--max-concurrency') },
      { name: 'max queue', value: String(options.maxQueue), source: sourceOf(self, 'maxQueue', '--max-queue') },
      { name: 'request timeout ms', value: String(options.requestTimeout), source: sourceOf(self, 'requestTimeout', '--request-timeout') },
      { name: 'shutdown grace ms', value: String(options.shutdownGrace), source: sourceOf(self, 'shutdownGrace', '--shutdown-grace') },
      { name: 'log level', value: options.logLevel, source: sourceOf(self, 'logLevel', '--log-level') },
      { name: 'demo page', value: options.web ? 'on' : 'off', source: sourceOf(self, 'web', '--no-web') },
      {
        name: 'api keys',
        value: apiKeys.length === 0 ? 'none (every client may call)' : `${apiKeys.length} (${apiKeys.map((key) => maskSecret(key)).join(' ')})`,
        source: options.apiKey ? '--api-key' : env.VQA_LLM_API_KEYS ? 'env VQA_LLM_API_KEYS' : options.apiKeyFile ? sourceOf(self, 'apiKeyFile', '--api-key-file') : 'default',
      },
      { name: 'allowed hosts', value: allowedHosts.length > 0 ? allowedHosts.join(' ') : `${SERVER_DEFAULTS.loopbackHosts.join(' ')} when bound to loopback, else any`, source: options.allowedHost ? '--allowed-host' : env.VQA_LLM_ALLOWED_HOSTS ? 'env VQA_LLM_ALLOWED_HOSTS' : 'default' },
      { name: 'cors origins', value: corsOrigins.length > 0 ? corsOrigins.join(' ') : 'none (CORS off, cross-site posts refused)', source: options.corsOrigin ? '--cors-origin' : env.VQA_LLM_CORS_ORIGINS ? 'env VQA_LLM_CORS_ORIGINS' : 'default' },
      { name: 'max connections', value: String(options.maxConnections), source: sourceOf(self, 'maxConnections', '--max-connections') },
      { name: 'shared cache', value: options.cache ? maskUrl(options.cache) : 'none (this replica caches alone)', source: sourceOf(self, 'cache', '--cache') },
    );
    process.stderr.write(`vqa-llm serve configuration:\n${formatConfig(entries)}\n`);

    // Listen first: liveness answers and readiness says "loading" while full-size models take seconds to load.
    const loading = openVisionModels(options);
    const vision = deferVisionModels(loading, { caption: options.captionModel, vqa: options.vqaModel });
    let server: Awaited<ReturnType<typeof startVqaServer>>;
    try {
      server = await startVqaServer({
        vision,
        llm,
        chainOptions: { topK: options.topK, llmTimeoutMs: options.llmTimeout },
        modelName: options.servedModelName,
        allowImageUrls,
        imageUrlPolicy: { allowHttp: allowHttpImageUrls, ...(imageUrlHosts.length > 0 ? { allowedHosts: imageUrlHosts } : {}) },
        bodyLimitBytes: options.bodyLimit,
        maxConcurrency: options.maxConcurrency,
        maxQueue: options.maxQueue,
        requestTimeoutMs: options.requestTimeout,
        web: options.web,
        apiKeys,
        ...(allowedHosts.length > 0 ? { allowedHosts } : {}),
        corsOrigins,
        maxConnections: options.maxConnections,
        logger: { level: options.logLevel },
        disposeVision: true,
        host: options.host,
        port: options.port,
      });
    } catch (error) {
      // The models go on loading in worker threads; let them go rather than hold the exit.
      void loading.then((loaded) => loaded.dispose(), () => undefined);
      throw listenError(error, options, sourceOf(self, 'port', '--port'));
    }
    process.stderr.write(`vqa-llm listening on ${server.url} (OpenAI base URL ${server.url}/v1${options.web ? `, demo page ${server.url}/` : ''})\n`);

    // A model that cannot load is fatal: say why and exit non-zero rather than serve 'not ready' forever.
    const loadFailed = loading.then(
      () => new Promise<never>(() => undefined),
      (error: unknown) => error,
    );
    // SIGTERM (Kubernetes, systemd, docker stop), SIGINT (Ctrl-C) and SIGHUP (the terminal closed): readiness fails,
    // the port closes, accepted requests finish within the grace period (those still queued or running at its end get
    // 503), then the process exits 0. A second signal is logged and ignored: it does not cut the drain short, the
    // grace period does (kill -9 is the way to stop at once).
    const stopped = new Promise<void>((resolve) => {
      let draining = false;
      const stop = (signal: NodeJS.Signals): void => {
        if (draining) {
          process.stderr.write(`vqa-llm: ${signal} again, still draining (the grace period ends it)\n`);
          return;
        }
        draining = true;
        process.stderr.write(`vqa-llm: ${signal}, draining (up to ${options.shutdownGrace} ms)\n`);
        server.shutdown({ graceMs: options.shutdownGrace }).then(
          ({ drained }) => {
            process.stderr.write(drained ? 'vqa-llm: drained, exiting\n' : 'vqa-llm: grace period over, requests left answered 503 and connections cut\n');
            resolve();
          },
          () => resolve(),
        );
      };
      for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, stop);
    });
    const failure = await Promise.race([stopped.then(() => undefined), loadFailed]);
    if (failure !== undefined) {
      await server.close().catch(() => undefined);
      throw failure;
    }
    process.exitCode = 0;
    // Worker threads or a stray keep-alive timer must not hold the exit past the drain.
    setTimeout(() => process.exit(0), 2_000).unref();
  });
}
