import { access, mkdir, open, readFile, truncate, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import pLimit from 'p-limit';
import type { VqaCallOptions, VqaInput, VqaResult } from '../../chains/types.js';
import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { RUN_EVAL_DEFAULTS } from './eval-defaults.js';
import { IssueCollector } from './issues.js';
import { parsePredictions } from './predictions.js';
import { summarizeEval, type EvalSummary } from './summary.js';
import type { EvalQuestion, PredictionRecord, ReferenceSet } from './types.js';

/** What the evaluation needs from the chain: `createVqaChain(...)` fits, and so does a test double. */
export interface EvalChain {
  invoke(input: VqaInput, options?: Partial<VqaCallOptions>): Promise<VqaResult>;
}

export interface EvalProgress {
  /** Questions finished in this run (failed ones included). */
  done: number;
  /** Questions this run has to compute (those finished in an earlier run are not counted). */
  total: number;
  failed: number;
  /** Questions found finished in the predictions file and skipped. */
  resumed: number;
}

export interface RunEvalOptions {
  dataset: ReferenceSet<EvalQuestion>;
  /** The VQA+LLM chain; with `llm: 'none'` only the VQA-only arm is recorded. */
  chain: EvalChain;
  /** Predictions JSONL. An existing file is resumed: questions with a prediction there are not run again. */
  output: string;
  /** Questions in flight at once. Default 2 (the chain's own default, suited to 2 cores). */
  concurrency?: number;
  /** Start over: empty `output` instead of resuming. Default false. */
  fresh?: boolean;
  /** Only the first `limit` questions of the dataset. */
  limit?: number;
  onProgress?: (progress: EvalProgress) => void;
  /** Stops scheduling questions; those in flight are aborted and not recorded, so a rerun resumes cleanly. */
  signal?: AbortSignal;
}

export interface RunEvalResult {
  summary: EvalSummary;
  /** Questions computed by this run, failed ones included. */
  computed: number;
  /** Questions skipped because the predictions file already had them. */
  resumed: number;
}

export { RUN_EVAL_DEFAULTS } from './eval-defaults.js';

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** The record for one answered question: both arms come from one chain call, the VQA-only arm being its top candidate. */
export function toPredictionRecord(question: EvalQuestion, result: VqaResult): PredictionRecord {
  const top = result.candidates[0];
  const { timings } = result;
  const withLlm = result.fallbackReason?.code !== 'llm_disabled';
  return {
    questionId: question.questionId,
    question: question.question,
    image: question.image,
    answerType: question.answerType,
    vqa: { shortAnswer: top?.answer ?? '', ...(top ? { score: top.score } : {}) },
    ...(withLlm
      ? {
          llm: {
            shortAnswer: result.shortAnswer,
            answer: result.answer,
            source: result.source,
            ...(result.fallbackReason ? { fallbackReason: { code: result.fallbackReason.code, message: result.fallbackReason.message } } : {}),
          },
        }
      : {}),
    caption: result.caption,
    candidates: result.candidates,
    timings: {
      prepare: round(timings.prepare),
      caption: round(timings.caption),
      candidates: round(timings.candidates),
      vision: round(timings.vision),
      ...(withLlm ? { llm: round(timings.llm) } : {}),
      total: round(timings.total),
    },
    models: result.models,
  };
}

async function readExisting(output: string): Promise<PredictionRecord[]> {
  let text: string;
  try {
    text = await readFile(output, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parsed = parsePredictions(text, output);
  if (parsed.format !== 'jsonl') {
    throw new InvalidOptionError('invalid_value', `${output} holds VQA results JSON, not eval predictions; refusing to append to it.`, { hint: 'Choose another --output.' });
  }
  // A run stopped mid-write leaves a line without its newline; appending after it would glue two records together.
  if (text !== '' && !text.endsWith('\n')) await truncate(output, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
  return parsed.records;
}

/**
 * Runs the evaluation: every question through the chain (at most `concurrency` at a time), one JSONL record per
 * question appended to `output` as soon as it is answered, then the summary of the whole file. An interrupted
 * run resumes: questions already answered in `output` are skipped; failed ones are tried again.
 *
 * Questions whose image file is missing are not run and are counted as `missing_image` in the summary.
 *
 * @example
 * ```ts
 * const vision = await createVisionModels({ modelsDir: 'models' });
 * const chain = createVqaChain({ vision, llm: createChatModel({ provider: 'openai' }) });
 * const dataset = await loadJsonlDataset('test/fixtures/eval/questions.jsonl');
 * const { summary } = await runEval({ dataset, chain, output: 'predictions.jsonl' });
 * console.log(formatSummary(summary));
 * await vision.dispose();
 * ```
 */
export async function runEval(options: RunEvalOptions): Promise<RunEvalResult> {
  const concurrency = options.concurrency ?? RUN_EVAL_DEFAULTS.concurrency;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new InvalidOptionError('invalid_value', `concurrency must be a positive integer, got ${String(concurrency)}.`);
  if (options.limit !== undefined && (!Number.isInteger(options.limit) || options.limit < 1)) {
    throw new InvalidOptionError('invalid_value', `limit must be a positive integer, got ${String(options.limit)}.`);
  }
  const questions = options.dataset.questions.slice(0, options.limit);
  const reference: ReferenceSet<EvalQuestion> = { ...options.dataset, questions };
  const issues = new IssueCollector();

  const imageExists = new Map<string, Promise<boolean>>();
  const exists = (path: string): Promise<boolean> => {
    if (!imageExists.has(path)) imageExists.set(path, access(path).then(() => true, () => false));
    return imageExists.get(path)!;
  };
  const runnable: EvalQuestion[] = [];
  for (const question of questions) {
    if (await exists(question.image)) runnable.push(question);
    else issues.add('missing_image', question.questionId, `Questions whose image file is missing were not run (first: ${question.image}).`);
  }

  await mkdir(dirname(options.output), { recursive: true });
  if (options.fresh) await writeFile(options.output, '');
  const existing = await readExisting(options.output);
  const answered = new Set(existing.filter((record) => !record.error).map((record) => String(record.questionId)));
  const todo = runnable.filter((question) => !answered.has(String(question.questionId)));
  const progress: EvalProgress = { done: 0, total: todo.length, failed: 0, resumed: runnable.length - todo.length };
  options.onProgress?.({ ...progress });

  const file = await open(options.output, 'a');
  // One write at a time, so records never interleave whatever order the questions finish in.
  let writes: Promise<unknown> = Promise.resolve();
  const append = (record: PredictionRecord): Promise<unknown> => (writes = writes.then(() => file.write(`${JSON.stringify(record)}\n`)));
  const limit = pLimit(concurrency);
  try {
    await Promise.all(
      todo.map((question) =>
        limit(async () => {
          if (options.signal?.aborted) return;
          let record: PredictionRecord;
          try {
            // A signal per question: the chain leaves abort listeners on the signal it is given, and one shared
            // signal would collect them across thousands of questions.
            const signal = options.signal ? AbortSignal.any([options.signal]) : undefined;
            // The question id travels as metadata: a queued chain names its job by it (src/distributed/queue-chain.ts).
            const result = await options.chain.invoke({ image: question.image, question: question.question }, { signal, metadata: { questionId: question.questionId } });
            record = toPredictionRecord(question, result);
          } catch (error) {
            if (options.signal?.aborted) return;
            const failure = error as { name?: string; code?: string; message?: string };
            record = {
              questionId: question.questionId,
              question: question.question,
              image: question.image,
              error: { name: failure.name ?? 'Error', ...(typeof failure.code === 'string' ? { code: failure.code } : {}), message: failure.message ?? String(error) },
            };
            progress.failed += 1;
          }
          await append(record);
          progress.done += 1;
          options.onProgress?.({ ...progress });
        }),
      ),
    );
    await writes;
  } finally {
    await file.close();
  }
  options.signal?.throwIfAborted();

  const records = parsePredictions(await readFile(options.output, 'utf8'), options.output).records;
  const summary = summarizeEval({ reference, records, issues: issues.list() });
  return { summary, computed: progress.done, resumed: progress.resumed };
}
