// Cold load and resident memory of the vision models, against the bytes of their graphs:
//   node dist/bench/load-memory.js [--tiny] [--arena] [--initializers-in-arena] [--no-mem-pattern] [--no-prepack]
// (the flags turn onnxruntime's own defaults back on, or prepacking off)
// Prints RESULT {...}: load ms, RSS after load and after one question, each also as a ratio to the graphs' bytes.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { packageRoot } from '../src/paths.js';
import { createVisionModels } from '../src/runtime/vision-models.js';
import type { GraphSessionOptions } from '../src/runtime/onnx-session.js';

export interface LoadMemoryResult {
  sessionOptions: Omit<GraphSessionOptions, 'intraOpNumThreads'>;
  weightMiB: number;
  loadMs: number;
  rssAfterLoadMiB: number;
  rssAfterQuestionMiB: number;
  rssAfterLoadRatio: number;
  rssAfterQuestionRatio: number;
  firstQuestionMs: number;
  answer: string;
  /**
   * RSS after load split as Linux reports it (/proc/self/status; absent elsewhere): anonymous memory (heaps,
   * onnxruntime's pre-packed weights, arenas) and file pages (weights onnxruntime maps from `.onnx.data` files, the
   * kernel's to drop and read again under memory pressure; rows of an embedding table never read are not resident).
   */
  rssAfterLoadSplitMiB?: { anonymous: number; file: number };
}

/** RssAnon and RssFile of this process in MiB, where /proc says them. */
export function residentSplit(): { anonymous: number; file: number } | undefined {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    const anonymous = kib('RssAnon');
    const file = kib('RssFile');
    return Number.isFinite(anonymous) && Number.isFinite(file) ? { anonymous: Math.round(anonymous / 1024), file: Math.round(file / 1024) } : undefined;
  } catch {
    return undefined;
  }
}

const root = packageRoot();
const MiB = 1024 * 1024;

/** Bytes of the fp32 graphs (and their external data) of a model folder. */
export function graphBytes(folder: string): number {
  const onnx = join(folder, 'onnx');
  return readdirSync(onnx)
    .filter((name) => !name.includes('.int8.'))
    .reduce((sum, name) => sum + statSync(join(onnx, name)).size, 0);
}

export async function benchLoadMemory(options: {
  modelsDir: string;
  captionModel: string;
  vqaModel: string;
  sessionOptions?: Omit<GraphSessionOptions, 'intraOpNumThreads'>;
}): Promise<LoadMemoryResult> {
  const weightBytes = graphBytes(join(options.modelsDir, options.captionModel)) + graphBytes(join(options.modelsDir, options.vqaModel));
  const started = performance.now();
  const vision = await createVisionModels({ modelsDir: options.modelsDir, captionModel: options.captionModel, vqaModel: options.vqaModel, offline: true, sessionOptions: options.sessionOptions });
  const loadMs = performance.now() - started;
  try {
    const rssAfterLoad = process.memoryUsage().rss;
    const split = residentSplit();
    const image = readFileSync(join(root, 'test', 'fixtures', 'eval', 'dogs.jpg'));
    const questionStarted = performance.now();
    const [caption, answers] = await Promise.all([vision.caption(image), vision.candidates(image, 'What is in the picture?')]);
    const firstQuestionMs = performance.now() - questionStarted;
    const rssAfterQuestion = process.memoryUsage().rss;
    return {
      sessionOptions: options.sessionOptions ?? {},
      weightMiB: Math.round((weightBytes / MiB) * 10) / 10,
      loadMs: Math.round(loadMs),
      rssAfterLoadMiB: Math.round(rssAfterLoad / MiB),
      rssAfterQuestionMiB: Math.round(rssAfterQuestion / MiB),
      rssAfterLoadRatio: Math.round((rssAfterLoad / weightBytes) * 100) / 100,
      rssAfterQuestionRatio: Math.round((rssAfterQuestion / weightBytes) * 100) / 100,
      firstQuestionMs: Math.round(firstQuestionMs),
      answer: `${caption.caption} | ${answers.candidates[0]!.answer}`,
      ...(split ? { rssAfterLoadSplitMiB: split } : {}),
    };
  } finally {
    await vision.dispose();
  }
}

/**
 * benchLoadMemory in a fresh process (`node dist/bench/load-memory.js`), so that the RSS is the models' alone and
 * not what earlier benchmarks in the calling process left behind. `tiny`: the test models, else the stand-ins.
 *
 * @example
 * const { rssAfterLoadRatio } = await benchLoadMemoryInChild({ tiny: false });
 */
export async function benchLoadMemoryInChild(options: { tiny?: boolean } = {}): Promise<LoadMemoryResult> {
  const script = join(root, 'dist', 'bench', 'load-memory.js');
  const { stdout } = await promisify(execFile)(process.execPath, [script, ...(options.tiny ? ['--tiny'] : [])], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  const line = stdout.split('\n').find((candidate) => candidate.startsWith('RESULT '));
  if (!line) throw new Error('bench/load-memory.js printed no result');
  return JSON.parse(line.slice('RESULT '.length)) as LoadMemoryResult;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\/dist\//, '/dist/'))) {
  const { values } = parseArgs({
    options: {
      tiny: { type: 'boolean', default: false },
      arena: { type: 'boolean', default: false },
      'no-mem-pattern': { type: 'boolean', default: false },
      'initializers-in-arena': { type: 'boolean', default: false },
      'no-prepack': { type: 'boolean', default: false },
    },
  });
  const sessionOptions: Omit<GraphSessionOptions, 'intraOpNumThreads'> = {};
  if (values.arena) sessionOptions.enableCpuMemArena = true;
  if (values['no-mem-pattern']) sessionOptions.enableMemPattern = false;
  if (values['initializers-in-arena']) sessionOptions.initializersInArena = true;
  if (values['no-prepack']) sessionOptions.prepackWeights = false;
  const result = await benchLoadMemory({
    modelsDir: values.tiny ? join(root, 'test', 'fixtures', 'models') : join(root, 'models', 'full-size'),
    captionModel: values.tiny ? 'tiny-blip' : 'blip-base-standin',
    vqaModel: values.tiny ? 'tiny-vle' : 'vle-base-standin',
    sessionOptions,
  });
  console.log(`RESULT ${JSON.stringify(result)}`);
}
