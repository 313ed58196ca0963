// The `--queue` branch of `vqa-llm eval run`: the producer side, with its own progress line (workers included).
import type { EvalSummary } from '../eval/summary.js';
import type { EvalQuestion, ReferenceSet } from '../eval/types.js';
import { runQueuedEval, type QueuedEvalProgress } from './queued-eval.js';
import { redact } from './redis-url.js';

export interface QueuedEvalCliOptions {
  dataset: ReferenceSet<EvalQuestion>;
  queue: string;
  output: string;
  limit?: number;
  fresh?: boolean;
}

/** One line per tenth of the run, naming how many workers answered and how many answers each gave. */
export function formatQueuedProgress(progress: QueuedEvalProgress): string {
  const workers = Object.entries(progress.byWorker).sort(([left], [right]) => left.localeCompare(right));
  const byWorker = workers.length === 0 ? 'no answers yet' : workers.map(([name, count]) => `${name} ${count}`).join(', ');
  return `eval: ${progress.done}/${progress.total} questions (failed ${progress.failed}, resumed ${progress.resumed}) from ${workers.length} worker(s): ${byWorker}`;
}

/**
 * Runs `eval run --queue`: enqueues the questions, prints progress on stderr, resumes after a crash (run the same
 * command again), and returns the summary as a single-process run would.
 */
export async function runQueuedEvalForCli(options: QueuedEvalCliOptions, stderr: NodeJS.WritableStream = process.stderr): Promise<EvalSummary> {
  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort();
  process.once('SIGINT', onInterrupt);
  let lastDecile = -1;
  stderr.write(`eval: questions go to the queue at ${redact(options.queue)}; start workers with: vqa-llm worker --queue <same url> (they need the models, not the dataset: images go through Redis)\n`);
  try {
    const { summary } = await runQueuedEval({
      dataset: options.dataset,
      queue: options.queue,
      source: '--queue',
      output: options.output,
      limit: options.limit,
      fresh: options.fresh,
      signal: controller.signal,
      onProgress: (progress) => {
        const decile = progress.total === 0 ? 10 : Math.floor((10 * progress.done) / progress.total);
        if (decile === lastDecile) return;
        lastDecile = decile;
        stderr.write(`${formatQueuedProgress(progress)}\n`);
      },
    });
    return summary;
  } catch (error) {
    if (controller.signal.aborted) stderr.write(`interrupted: finished questions are in ${options.output}, the rest stay queued; run the same command again to collect them.\n`);
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

