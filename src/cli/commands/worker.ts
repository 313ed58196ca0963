import { Option, type Command } from 'commander';
import { startEvalWorker, EVAL_WORKER_DEFAULTS, type EvalWorkerEvent } from '../../distributed/eval-worker.js';
import { redact } from '../../distributed/redis-url.js';
import { addModelOptions, openVisionModels, parsePositiveInteger } from '../shared.js';
import { addLlmOptions, createChainForCli, createLlmForCli, disposeLlmForCli, type LlmCommandOptions } from './ask.js';

interface WorkerCommandOptions extends LlmCommandOptions {
  queue: string;
  concurrency: number;
  lockDuration: number;
  name?: string;
  verbose?: boolean;
}

/** Registers `vqa-llm worker --queue URL`: answers the questions `vqa-llm eval --queue URL` enqueues. */
export function register(program: Command): void {
  addLlmOptions(
    addModelOptions(
      program
        .command('worker')
        .description('answer evaluation questions from a Redis queue (BullMQ), on any number of machines; see docs/scaling.md')
        .addOption(new Option('--queue <url>', 'the queue eval --queue fills, e.g. redis://10.0.0.5:6379/0').env('VQA_LLM_QUEUE_URL').makeOptionMandatory())
        .addOption(new Option('--concurrency <n>', 'questions answered at once').env('VQA_LLM_WORKER_CONCURRENCY').default(EVAL_WORKER_DEFAULTS.concurrency).argParser(parsePositiveInteger('--concurrency')))
        .addOption(
          new Option('--lock-duration <ms>', 'a job whose worker shows no sign of life for this long goes to another worker')
            .default(EVAL_WORKER_DEFAULTS.lockDurationMs)
            .argParser(parsePositiveInteger('--lock-duration')),
        )
        .addOption(new Option('--cache <url>', 'share captions and image embeddings with other workers and replicas through Redis').env('VQA_LLM_REDIS_URL'))
        .option('--name <name>', 'this worker\'s name in progress and logs (default host:pid)')
        .option('--verbose', 'a JSON line on stderr per job started and finished'),
    ),
  ).action(async (options: WorkerCommandOptions) => {
    const llm = await createLlmForCli(options);
    const vision = await openVisionModels(options).catch(async (error: unknown) => {
      await disposeLlmForCli(llm);
      throw error;
    });
    const onEvent = options.verbose ? (event: EvalWorkerEvent) => process.stderr.write(`${JSON.stringify(event)}\n`) : undefined;
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
      await vision.dispose();
      await disposeLlmForCli(llm);
      throw error;
    }
    process.stderr.write(`vqa-llm worker ${worker.name} takes questions from ${redact(options.queue)} (concurrency ${options.concurrency})\n`);
    // SIGTERM (Kubernetes, systemd) and SIGINT: take no more jobs, finish those in hand, exit 0. A job cut short by
    // kill -9 goes to another worker once its lock expires.
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals): void => {
        process.stderr.write(`vqa-llm worker: ${signal}, finishing the questions in hand\n`);
        resolve();
      };
      for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, stop);
    });
    await worker.close();
    process.stderr.write(`vqa-llm worker: answered ${worker.processed} question(s), exiting\n`);
    await vision.dispose();
    await disposeLlmForCli(llm);
  });
}
