import { stat } from 'node:fs/promises';
import type { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { InvalidOptionError } from '../../errors/invalid-option-error.js';
import { RUN_EVAL_DEFAULTS } from '../../eval/eval-defaults.js';
import type { EvalProgress } from '../../eval/run-eval.js';
import type { EvalSummary } from '../../eval/summary.js';
import type { EvalQuestion, ReferenceSet } from '../../eval/types.js';
import { addLlmOptions, type LlmCommandOptions } from '../llm-options.js';
import { abortOnInterrupt, createChainForCli, createLlmForCli, disposeLlmForCli } from '../llm-setup.js';
import { addModelOptions, openVisionModels, parsePositiveInteger, printJson, progressBars } from '../shared.js';

interface EvalRunOptions extends LlmCommandOptions {
  dataset?: string;
  questions?: string;
  annotations?: string;
  images?: string;
  imagePattern?: string;
  output: string;
  concurrency: number;
  limit?: number;
  fresh?: boolean;
  strict?: boolean;
  queue?: string;
}

interface EvalScoreOptions {
  predictions: string;
  annotations: string;
  json?: boolean;
  strict?: boolean;
}

/** Checks a path given by flag before any work, so that a typo is told as the flag and the path, in one line. */
async function checkInput(flag: string, path: string | undefined, kind: 'file' | 'folder'): Promise<void> {
  if (path === undefined) return;
  const stats = await stat(path).catch(() => undefined);
  if (!stats) throw new InvalidOptionError('invalid_value', `${flag} ${path}: no such ${kind}.`);
  if (kind === 'file' ? !stats.isFile() : !stats.isDirectory()) throw new InvalidOptionError('invalid_value', `${flag} ${path} is not a ${kind}.`);
}

async function loadDataset(options: EvalRunOptions): Promise<ReferenceSet<EvalQuestion>> {
  const { loadJsonlDataset, loadVqaV2Dataset } = await import('../../eval/dataset.js');
  await checkInput('--dataset', options.dataset, 'file');
  await checkInput('--questions', options.questions, 'file');
  await checkInput('--annotations', options.annotations, 'file');
  await checkInput('--images', options.images, 'folder');
  const vqaV2 = [options.questions, options.annotations, options.images];
  if (options.dataset !== undefined) {
    if (vqaV2.some((value) => value !== undefined)) {
      throw new InvalidOptionError('invalid_value', '--dataset (a JSONL) and --questions/--annotations/--images (VQAv2) are alternatives; give one.');
    }
    return loadJsonlDataset(options.dataset);
  }
  if (vqaV2.some((value) => value === undefined)) {
    throw new InvalidOptionError('invalid_value', 'Give --dataset FILE.jsonl, or all of --questions, --annotations and --images for VQAv2.');
  }
  return loadVqaV2Dataset({ questionsFile: options.questions!, annotationsFile: options.annotations!, imagesDir: options.images!, imagePattern: options.imagePattern });
}

/** A bar on a terminal; otherwise a line every 10% (logs, CI), so a long run shows it is alive without flooding. */
function createEvalProgress(stream: NodeJS.WriteStream = process.stderr): { update: (progress: EvalProgress) => void; stop: () => void } {
  let bar: SingleBar | undefined;
  let lastDecile = -1;
  return {
    update(progress) {
      if (stream.isTTY) {
        if (!bar) {
          const cliProgress = progressBars();
          bar = new cliProgress.SingleBar(
            { format: 'eval [{bar}] {value}/{total} questions | failed {failed} | resumed {resumed} | eta {eta_formatted}', stream, hideCursor: true },
            cliProgress.Presets.shades_classic,
          );
          bar.start(progress.total, progress.done, { failed: progress.failed, resumed: progress.resumed });
        }
        bar.update(progress.done, { failed: progress.failed, resumed: progress.resumed });
        return;
      }
      const decile = progress.total === 0 ? 10 : Math.floor((10 * progress.done) / progress.total);
      if (decile !== lastDecile) {
        lastDecile = decile;
        stream.write(`eval: ${progress.done}/${progress.total} questions (failed ${progress.failed}, resumed ${progress.resumed})\n`);
      }
    },
    stop() {
      bar?.stop();
    },
  };
}

async function report(summary: EvalSummary, options: { json?: boolean; strict?: boolean }): Promise<void> {
  const { formatSummary } = await import('../../eval/format-summary.js');
  if (options.json) printJson(summary);
  else process.stdout.write(`${formatSummary(summary)}\n`);
  if (options.strict && summary.issues.length > 0) {
    throw new InvalidOptionError('invalid_value', `--strict: ${summary.issues.length} kind(s) of issue found (${summary.issues.map((issue) => issue.code).join(', ')}).`);
  }
}

/** Registers `vqa-llm eval [run]` and `vqa-llm eval score`. */
export function register(program: Command): void {
  const evaluate = program.command('eval').description('measure VQAv2 accuracy of the VQA-only and VQA+LLM answers, and the latency of each stage');

  addLlmOptions(
    addModelOptions(
      evaluate
        .command('run', { isDefault: true })
        .description('answer every question of a dataset, write predictions (JSONL, resumable) and print the summary')
        .option('--dataset <file>', 'JSONL, one {"image", "question", "answers": [...]} per line (images relative to the file)')
        .option('--questions <file>', 'VQAv2 questions JSON, e.g. v2_OpenEnded_mscoco_val2014_questions.json')
        .option('--annotations <file>', 'VQAv2 annotations JSON, e.g. v2_mscoco_val2014_annotations.json')
        .option('--images <dir>', 'VQAv2 image folder, e.g. val2014/')
        .option('--image-pattern <pattern>', 'image file name with %012d for the image id (default COCO_<data_subtype>_%012d.jpg)')
        .requiredOption('--output <file>', 'predictions JSONL; an existing file is resumed (finished questions are skipped)')
        .option('--concurrency <n>', 'questions in flight at once', parsePositiveInteger('--concurrency'), RUN_EVAL_DEFAULTS.concurrency)
        .option('--limit <n>', 'only the first n questions', parsePositiveInteger('--limit'))
        .option('--fresh', 'start over instead of resuming an existing --output')
        .option('--json', 'print the summary as JSON')
        .option('--strict', 'exit 1 when any issue (missing image, failed question, ...) was found')
        .option('--queue <url>', 'send the questions to `vqa-llm worker` processes through Redis (BullMQ), e.g. redis://10.0.0.5:6379/0; model and LLM flags then belong to the workers (see docs/scaling.md)'),
    ),
  ).action(async (options: EvalRunOptions) => {
    const dataset = await loadDataset(options);
    if (options.queue) {
      const { runQueuedEvalForCli } = await import('../../distributed/queued-eval-cli.js');
      return report(await runQueuedEvalForCli({ dataset, queue: options.queue, output: options.output, limit: options.limit, fresh: options.fresh }), options);
    }
    const { runEval } = await import('../../eval/run-eval.js');
    const llm = await createLlmForCli(options);
    const vision = await openVisionModels(options).catch(async (error: unknown) => {
      await disposeLlmForCli(llm);
      throw error;
    });
    const interrupt = abortOnInterrupt();
    const progress = createEvalProgress();
    try {
      const chain = createChainForCli(vision, llm, options);
      const { summary } = await runEval({
        dataset,
        chain,
        output: options.output,
        concurrency: options.concurrency,
        limit: options.limit,
        fresh: options.fresh,
        signal: interrupt.signal,
        onProgress: progress.update,
      });
      progress.stop();
      await report(summary, options);
    } catch (error) {
      progress.stop();
      if (interrupt.signal.aborted) process.stderr.write(`interrupted: finished questions are in ${options.output}; run the same command again to resume.\n`);
      throw error;
    } finally {
      interrupt.dispose();
      await vision.dispose();
      await disposeLlmForCli(llm);
    }
  });

  evaluate
    .command('score')
    .description('score an existing predictions file (this tool\'s JSONL, or VQA results [{"question_id", "answer"}])')
    .requiredOption('--predictions <file>', 'predictions JSONL written by vqa-llm eval, or VQA results JSON')
    .requiredOption('--annotations <file>', 'VQAv2 annotations JSON, or the JSONL dataset the predictions were made for')
    .option('--json', 'print the summary as JSON')
    .option('--strict', 'exit 1 when any issue (missing or unknown question ids, ...) was found')
    .action(async (options: EvalScoreOptions) => {
      await checkInput('--predictions', options.predictions, 'file');
      await checkInput('--annotations', options.annotations, 'file');
      const { loadReferenceAnswers } = await import('../../eval/dataset.js');
      const { readPredictions } = await import('../../eval/predictions.js');
      const { summarizeEval } = await import('../../eval/summary.js');
      const [reference, predictions] = await Promise.all([loadReferenceAnswers(options.annotations), readPredictions(options.predictions)]);
      if (predictions.partialLastLine) process.stderr.write(`warning: the last line of ${options.predictions} was cut off (an interrupted run) and is ignored.\n`);
      await report(summarizeEval({ reference, records: predictions.records }), options);
    });
}
