import { Option, type Command } from 'commander';
import type { EvalWorkerEvent } from '../../distributed/eval-worker.js';
import { redact } from '../../distributed/redis-url.js';
import type { WorkerHealth } from '../../distributed/worker-health.js';
import { EVAL_WORKER_DEFAULTS, WORKER_HEALTH_DEFAULTS } from '../../distributed/worker-defaults.js';
import { InvalidOptionError } from '../../errors/index.js';
import { addLlmOptions, type LlmCommandOptions } from '../llm-options.js';
import { createChainForCli, createLlmForCli, disposeLlmForCli } from '../llm-setup.js';
import { addModelOptions, openVisionModels, parsePositiveInteger } from '../shared.js';

interface WorkerCommandOptions extends LlmCommandOptions {
  queue: string;
  concurrency: number;
  lockDuration: number;
  name?: string;
  verbose?: boolean;
  healthPort?: number;
  healthHost: string;
}

/**
 * The defaults `worker --help` shows and the options get, from the import-free worker-defaults module (the queue and
 * health modules load sharp, the queue's Redis client and prom-client, which registering the command must not pay for).
 */
export const WORKER_COMMAND_DEFAULTS = {
  concurrency: EVAL_WORKER_DEFAULTS.concurrency,
  lockDurationMs: EVAL_WORKER_DEFAULTS.lockDurationMs,
  healthHost: WORKER_HEALTH_DEFAULTS.host,
} as const;

function parseHealthPort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isInteger(port) || port > 65535) throw new InvalidOptionError('invalid_value', `--health-port must be 0-65535, got "${value}".`);
  return port;
}

/** The health endpoint, when asked for; its module is loaded only then, so a worker without a port has no server code. */
async function startHealth(options: WorkerCommandOptions): Promise<WorkerHealth | undefined> {
  if (options.healthPort === undefined) return undefined;
  const { startWorkerHealth } = await import('../../distributed/worker-health.js');
  let health: WorkerHealth;
  try {
    health = await startWorkerHealth({ port: options.healthPort, host: options.healthHost, queue: options.queue, source: '--queue' });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new InvalidOptionError('invalid_value', `Cannot listen on ${options.healthHost}:${options.healthPort} for --health-port (${code}).`, {
        hint: code === 'EADDRINUSE' ? 'Pass another --health-port (or 0 for any free port).' : 'Pass --health-host 127.0.0.1 (or 0.0.0.0), and a port from 1024 up.',
        cause: error,
      });
    }
    throw error;
  }
  process.stderr.write(`vqa-llm worker: health on ${health.url} (/healthz, /readyz, /metrics)\n`);
  return health;
}

interface WorkerModules {
  evalWorker: typeof import('../../distributed/eval-worker.js');
  readiness: typeof import('../../server/readiness.js');
}

/**
 * What the worker runs, loaded when it runs, so that registering the command (and `--help`) does not load sharp
 * (the queue's image store, the readiness probe) or the queue's client. One import at a time: see ../program.ts.
 */
async function loadWorkerModules(): Promise<WorkerModules> {
  const evalWorker = await import('../../distributed/eval-worker.js');
  const readiness = await import('../../server/readiness.js');
  return { evalWorker, readiness };
}

/** Registers `vqa-llm worker --queue URL`: answers the questions `vqa-llm eval --queue URL` enqueues. */
export function register(program: Command): void {
  addLlmOptions(
    addModelOptions(
      program
        .command('worker')
        .description('answer evaluation and batch questions from a Redis queue (BullMQ), on any number of machines; see docs/scaling.md')
        .addOption(new Option('--queue <url>', 'the queue eval --queue fills, e.g. redis://10.0.0.5:6379/0').env('VQA_LLM_QUEUE_URL').makeOptionMandatory())
        .addOption(new Option('--concurrency <n>', 'questions answered at once').env('VQA_LLM_WORKER_CONCURRENCY').default(WORKER_COMMAND_DEFAULTS.concurrency).argParser(parsePositiveInteger('--concurrency')))
        .addOption(
          new Option('--lock-duration <ms>', 'a job whose worker shows no sign of life for this long goes to another worker')
            .default(WORKER_COMMAND_DEFAULTS.lockDurationMs)
            .argParser(parsePositiveInteger('--lock-duration')),
        )
        .addOption(new Option('--cache <url>', 'share captions and image embeddings with other workers and replicas through Redis').env('VQA_LLM_REDIS_URL'))
        .option('--name <name>', 'this worker\'s name in progress and logs (default host:pid)')
        .option('--verbose', 'a JSON line on stderr per question started, finished or abandoned')
        .addOption(
          new Option('--health-port <n>', 'serve /healthz, /readyz and /metrics on this port (0 = any free port; default: none)')
            .env('VQA_LLM_WORKER_HEALTH_PORT')
            .argParser(parseHealthPort),
        )
        .addOption(new Option('--health-host <address>', 'address the health port binds (0.0.0.0 in a pod, for the kubelet)').env('VQA_LLM_WORKER_HEALTH_HOST').default(WORKER_COMMAND_DEFAULTS.healthHost)),
    ),
  ).action(async (options: WorkerCommandOptions) => {
    // Listening before the models load: liveness answers during a load of seconds, readiness says `loading`.
    const health = await startHealth(options);
    let modules: WorkerModules;
    let llm: Awaited<ReturnType<typeof createLlmForCli>>;
    let vision: Awaited<ReturnType<typeof openVisionModels>>;
    try {
      modules = await loadWorkerModules();
      llm = await createLlmForCli(options);
      vision = await openVisionModels(options).catch(async (error: unknown) => {
        await disposeLlmForCli(llm);
        throw error;
      });
    } catch (error) {
      await health?.close();
      throw error;
    }
    const verbose = options.verbose ? (event: EvalWorkerEvent) => process.stderr.write(`${JSON.stringify(event)}\n`) : undefined;
    const onEvent =
      health || verbose
        ? (event: EvalWorkerEvent) => {
            health?.observe(event);
            verbose?.(event);
          }
        : undefined;
    const { startEvalWorker } = modules.evalWorker;
    let worker: Awaited<ReturnType<typeof startEvalWorker>>;
    try {
      worker = await startEvalWorker({
        queue: options.queue,
        source: '--queue',
        chain: createChainForCli(vision, llm, options),
        concurrency: options.concurrency,
        lockDurationMs: options.lockDuration,
        name: options.name,
        onEvent,
      });
    } catch (error) {
      await health?.close();
      await vision.dispose();
      await disposeLlmForCli(llm);
      throw error;
    }
    // Readiness proves the models with a tiny inference of their own (no cache answers it), once, from now.
    health?.modelsLoaded(modules.readiness.createReadinessProbe(vision));
    process.stderr.write(`vqa-llm worker ${worker.name} takes questions from ${redact(options.queue)} (concurrency ${options.concurrency})\n`);
    // SIGTERM (Kubernetes, systemd) and SIGINT: readiness fails at once, take no more jobs, finish those in hand,
    // exit 0. A job cut short by kill -9 goes to another worker once its lock expires.
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        health?.setDraining();
        process.stderr.write(`vqa-llm worker: ${signal}, finishing the questions in hand\n`);
        resolve();
      };
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, stop);
    });
    // Bounded: with Redis unreachable the answers in hand can never be acknowledged (their jobs go elsewhere).
    await worker.close({ timeoutMs: EVAL_WORKER_DEFAULTS.drainTimeoutMs });
    process.stderr.write(`vqa-llm worker: answered ${worker.processed} question(s), exiting\n`);
    // Liveness stays up through the drain, so an orchestrator does not count a draining worker as dead.
    await health?.close();
    await vision.dispose();
    await disposeLlmForCli(llm);
  });
}
