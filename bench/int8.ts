// int8 against fp32 on the full-size stand-ins: the exporter's dynamically quantized graphs (`variants.int8`, written
// by `make_test_models.py --full-size --int8` or `models/export.py --int8`) run by the project's runtime with its
// int8 option, against the fp32 graphs of the same folders.
//
//   node dist/bench/int8.js [--iterations 3] [--rounds 2] [--agreement-images 12 (0: speed only)] [--out bench/out/int8.json]
//
// Speed, load time and memory: each variant loads in a fresh process (so that RSS is its own), fp32 and int8 taking
// turns for --rounds rounds, each timing --iterations first questions on an image (caption and candidates
// concurrently, as `npm run bench` runs them) and follow-up questions; medians over all of them. Agreement: every
// committed photo (test/fixtures/images, test/fixtures/eval) and its mirror image, each asked a set of questions:
// top-1 and top-5 answers and every label's score, and the greedy caption, fp32 against int8.
// The stand-ins have random weights: their answer scores are nearly flat and their captions are not language, so the
// agreement figures say how far int8 moves the numbers, not how often a trained model would change its answer.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import sharp from 'sharp';
import { createVisionModels } from '../src/runtime/vision-models.js';
import { packageRoot } from '../src/paths.js';
import { median } from './stats.js';

type Variant = 'fp32' | 'int8';
type StageSummary = Record<string, number>;

export interface Int8VariantResult {
  variant: Variant;
  processes: number;
  iterations: number;
  /** createVisionModels until both models are ready, warm page cache; median over the processes. */
  loadMs: number;
  /** Resident set size right after loading, and the process's peak after the timed questions; medians, MiB. */
  rssAfterLoadMiB: number;
  peakRssMiB: number;
  /** Each process's figures, in the order they ran. */
  perProcess: { loadMs: number; rssAfterLoadMiB: number; peakRssMiB: number; firstQuestionWallMs: number }[];
  firstQuestion: StageSummary;
  followUpQuestion: StageSummary;
}

export interface Int8Agreement {
  images: number;
  questions: number;
  vqaCases: number;
  top1Same: number;
  top1SameShare: number;
  /** Mean of |top-5 fp32 ∩ top-5 int8| / 5. */
  top5OverlapMean: number;
  /** Largest |score int8 - score fp32| over every label of every case, and the mean of each case's largest. */
  maxScoreDifference: number;
  meanCaseMaxScoreDifference: number;
  /** Median fp32 top-1 score, and its median margin over the second: how flat the random stand-in's answers are. */
  fp32Top1ScoreMedian: number;
  fp32Top1MarginMedian: number;
  captions: number;
  captionsIdentical: number;
  captionIdenticalShare: number;
  /** Token position (0-based, after the prompt) of the first difference, over the captions that differ. */
  meanFirstDivergence: number | null;
  meanCaptionTokens: number;
  ms: number;
}

export interface Int8BenchResult {
  name: string;
  modelsDir: string;
  captionModel: string;
  vqaModel: string;
  threadsPerModel: number;
  graphMiB: Record<string, { fp32: number; int8: number }>;
  fp32: Int8VariantResult;
  int8: Int8VariantResult;
  /** fp32 ms / int8 ms of the medians. */
  speedup: Record<string, number>;
  /** null when run with --agreement-images 0. */
  agreement: Int8Agreement | null;
  note: string;
}

export interface Int8BenchOptions {
  modelsDir: string;
  captionModel: string;
  vqaModel: string;
  image: string;
  iterations?: number;
  rounds?: number;
  agreementImages?: number;
  log?: (line: string) => void;
}

const root = packageRoot();
const QUESTIONS = ['What is in the picture?', 'How many dogs are there?', 'What color is the truck?', 'Is the man fishing?', 'Where is this photo taken?'];
const NOTE =
  'Random-weight stand-ins at the real dimensions: speed, load time, memory and graph sizes carry over to the real models; ' +
  'agreement does not (nearly flat answer scores, captions that are not language), it only shows how far int8 moves the outputs.';

interface Manifest {
  graphs: Record<string, { file: string; variants?: Record<string, string> }>;
  files: Record<string, { bytes: number }>;
}

const readManifest = (folder: string): Manifest => JSON.parse(readFileSync(join(folder, 'vqa-llm.json'), 'utf8')) as Manifest;

/** True when every graph of both folders has an int8 variant. */
export function hasInt8Variants(modelsDir: string, captionModel: string, vqaModel: string): boolean {
  return [captionModel, vqaModel].every((model) => {
    const path = join(modelsDir, model, 'vqa-llm.json');
    return existsSync(path) && Object.values(readManifest(join(modelsDir, model)).graphs).every((graph) => graph.variants?.int8 !== undefined);
  });
}

const round = (value: number, digits = 2): number => Math.round(value * 10 ** digits) / 10 ** digits;
const mib = (bytes: number): number => round(bytes / 2 ** 20, 1);

function summarize(samples: StageSummary[]): StageSummary {
  const keys = [...new Set(samples.flatMap((sample) => Object.keys(sample)))];
  return Object.fromEntries(keys.map((key) => [key, round(median(samples.map((sample) => sample[key] ?? 0)))]));
}

/** One variant in this process: load, one warm-up round, then the timed questions. */
async function timeVariant(options: Int8BenchOptions, variant: Variant, iterations: number) {
  const loadStarted = performance.now();
  const vision = await createVisionModels({ modelsDir: options.modelsDir, captionModel: options.captionModel, vqaModel: options.vqaModel, offline: true, quantized: variant === 'int8' });
  const loadMs = performance.now() - loadStarted;
  const rssAfterLoad = process.memoryUsage().rss;
  const bytes = readFileSync(options.image);
  const first: StageSummary[] = [];
  const followUp: StageSummary[] = [];
  try {
    await Promise.all([vision.caption(bytes), vision.candidates(bytes, QUESTIONS[0]!)]);
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      vision.clearCache();
      const started = performance.now();
      const [caption, answers] = await Promise.all([vision.caption(bytes), vision.candidates(bytes, QUESTIONS[0]!)]);
      const wall = performance.now() - started;
      const steps = caption.tokenIds.length;
      first.push({
        wall,
        captionPreprocess: caption.timings.preprocess ?? 0,
        captionVision: caption.timings.vision ?? 0,
        crossAttention: caption.timings.crossAttention ?? 0,
        decoder: caption.timings.decoder ?? 0,
        decoderSteps: steps,
        decoderPerStep: (caption.timings.decoder ?? 0) / Math.max(1, steps),
        captionTotal: caption.timings.total ?? 0,
        vqaPreprocess: answers.timings.preprocess ?? 0,
        vqaVision: answers.timings.vision ?? 0,
        fusion: answers.timings.fusion ?? 0,
        vqaTotal: answers.timings.total ?? 0,
      });
      const followStarted = performance.now();
      const [cachedCaption, cachedAnswers] = await Promise.all([vision.caption(bytes), vision.candidates(bytes, QUESTIONS[1]!)]);
      followUp.push({ wall: performance.now() - followStarted, fusion: cachedAnswers.timings.fusion ?? 0, vqaTotal: cachedAnswers.timings.total ?? 0 });
      if (!cachedAnswers.imageCached || !cachedCaption.cached) throw new Error('the follow-up question did not hit the per-image caches');
    }
  } finally {
    await vision.dispose();
  }
  return { variant, loadMs, rssAfterLoadMiB: rssAfterLoad / 2 ** 20, peakRssMiB: process.resourceUsage().maxRSS / 1024, first, followUp };
}

type ChildResult = Awaited<ReturnType<typeof timeVariant>>;

/** Runs timeVariant in a fresh node process, so that its load time and memory are its own. */
async function timeVariantInChild(options: Int8BenchOptions, variant: Variant, iterations: number): Promise<ChildResult> {
  const script = join(root, 'dist', 'bench', 'int8.js');
  const childArgs = ['--child', variant, '--iterations', String(iterations), '--models', options.modelsDir, '--caption-model', options.captionModel, '--vqa-model', options.vqaModel, '--image', options.image];
  const { stdout } = await promisify(execFile)(process.execPath, [script, ...childArgs], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
  const line = stdout.split('\n').find((candidate) => candidate.startsWith('RESULT '));
  if (!line) throw new Error(`bench/int8.js --child ${variant} printed no result`);
  return JSON.parse(line.slice('RESULT '.length)) as ChildResult;
}

/** The committed photos, each once, and a mirror image of each, up to `limit`. */
async function agreementImages(limit: number): Promise<{ name: string; bytes: Buffer }[]> {
  const photos: { name: string; bytes: Buffer }[] = [];
  const seen = new Set<string>();
  for (const folder of ['images', 'eval']) {
    const directory = join(root, 'test', 'fixtures', folder);
    for (const name of readdirSync(directory).filter((file) => /\.(jpg|png)$/.test(file)).sort()) {
      const bytes = readFileSync(join(directory, name));
      const hash = createHash('sha256').update(bytes).digest('hex');
      if (!seen.has(hash)) photos.push({ name: `${folder}/${name}`, bytes });
      seen.add(hash);
    }
  }
  const mirrored = await Promise.all(photos.map(async (photo) => ({ name: `${photo.name} (mirrored)`, bytes: await sharp(photo.bytes).flop().png().toBuffer() })));
  return [...photos, ...mirrored].slice(0, limit);
}

interface VariantOutputs {
  captions: number[][];
  /** Per case, every label's score by label index. */
  scores: Float64Array[];
}

async function collectOutputs(options: Int8BenchOptions, variant: Variant, images: { bytes: Buffer }[]): Promise<VariantOutputs> {
  const vision = await createVisionModels({ modelsDir: options.modelsDir, captionModel: options.captionModel, vqaModel: options.vqaModel, offline: true, quantized: variant === 'int8' });
  try {
    const labels = vision.vqa.answers;
    const index = new Map(labels.map((label, position) => [label, position]));
    if (index.size !== labels.length) throw new Error('the VQA model has duplicate labels');
    const captions: number[][] = [];
    const scores: Float64Array[] = [];
    for (const image of images) {
      const answering = (async () => {
        const rows: Float64Array[] = [];
        for (const question of QUESTIONS) {
          const result = await vision.candidates(image.bytes, question, { topK: labels.length });
          const row = new Float64Array(labels.length);
          for (const candidate of result.candidates) row[index.get(candidate.answer)!] = candidate.score;
          rows.push(row);
        }
        return rows;
      })();
      const [caption, rows] = await Promise.all([vision.caption(image.bytes, { numBeams: 1 }), answering]);
      captions.push(caption.tokenIds);
      scores.push(...rows);
    }
    return { captions, scores };
  } finally {
    await vision.dispose();
  }
}

function topIndices(row: Float64Array, k: number): number[] {
  return [...row.keys()].sort((left, right) => row[right]! - row[left]! || left - right).slice(0, k);
}

function compare(fp32: VariantOutputs, int8: VariantOutputs, images: number, ms: number): Int8Agreement {
  let top1Same = 0;
  let overlap = 0;
  let maxDifference = 0;
  let sumCaseMax = 0;
  const top1Scores: number[] = [];
  const margins: number[] = [];
  for (const [caseIndex, reference] of fp32.scores.entries()) {
    const quantized = int8.scores[caseIndex]!;
    const [referenceTop, quantizedTop] = [topIndices(reference, 5), topIndices(quantized, 5)];
    if (referenceTop[0] === quantizedTop[0]) top1Same += 1;
    overlap += referenceTop.filter((label) => quantizedTop.includes(label)).length / 5;
    let caseMax = 0;
    for (let label = 0; label < reference.length; label += 1) caseMax = Math.max(caseMax, Math.abs(reference[label]! - quantized[label]!));
    maxDifference = Math.max(maxDifference, caseMax);
    sumCaseMax += caseMax;
    top1Scores.push(reference[referenceTop[0]!]!);
    margins.push(reference[referenceTop[0]!]! - reference[referenceTop[1]!]!);
  }
  const cases = fp32.scores.length;
  let identical = 0;
  const divergences: number[] = [];
  for (const [position, reference] of fp32.captions.entries()) {
    const quantized = int8.captions[position]!;
    if (reference.length === quantized.length && reference.every((id, token) => id === quantized[token])) {
      identical += 1;
      continue;
    }
    let token = 0;
    while (token < reference.length && token < quantized.length && reference[token] === quantized[token]) token += 1;
    divergences.push(token);
  }
  const captions = fp32.captions.length;
  return {
    images,
    questions: QUESTIONS.length,
    vqaCases: cases,
    top1Same,
    top1SameShare: round(top1Same / cases, 3),
    top5OverlapMean: round(overlap / cases, 3),
    maxScoreDifference: Number(maxDifference.toPrecision(3)),
    meanCaseMaxScoreDifference: Number((sumCaseMax / cases).toPrecision(3)),
    fp32Top1ScoreMedian: Number(median(top1Scores).toPrecision(3)),
    fp32Top1MarginMedian: Number(median(margins).toPrecision(3)),
    captions,
    captionsIdentical: identical,
    captionIdenticalShare: round(identical / captions, 3),
    meanFirstDivergence: divergences.length ? round(divergences.reduce((sum, value) => sum + value, 0) / divergences.length) : null,
    meanCaptionTokens: round(fp32.captions.reduce((sum, ids) => sum + ids.length, 0) / captions),
    ms: Math.round(ms),
  };
}

function graphSizes(options: Int8BenchOptions): Int8BenchResult['graphMiB'] {
  const sizes: Int8BenchResult['graphMiB'] = {};
  for (const model of [options.captionModel, options.vqaModel]) {
    const manifest = readManifest(join(options.modelsDir, model));
    for (const [name, graph] of Object.entries(manifest.graphs)) {
      sizes[name] = { fp32: mib(manifest.files[graph.file]!.bytes), int8: mib(manifest.files[graph.variants!.int8!]!.bytes) };
    }
  }
  return sizes;
}

function variantResult(variant: Variant, runs: ChildResult[]): Int8VariantResult {
  return {
    variant,
    processes: runs.length,
    iterations: runs.reduce((sum, run) => sum + run.first.length, 0),
    loadMs: round(median(runs.map((run) => run.loadMs))),
    rssAfterLoadMiB: round(median(runs.map((run) => run.rssAfterLoadMiB)), 1),
    peakRssMiB: round(median(runs.map((run) => run.peakRssMiB)), 1),
    perProcess: runs.map((run) => ({
      loadMs: round(run.loadMs),
      rssAfterLoadMiB: round(run.rssAfterLoadMiB, 1),
      peakRssMiB: round(run.peakRssMiB, 1),
      firstQuestionWallMs: round(median(run.first.map((sample) => sample.wall!))),
    })),
    firstQuestion: summarize(runs.flatMap((run) => run.first)),
    followUpQuestion: summarize(runs.flatMap((run) => run.followUp)),
  };
}

export async function benchInt8(options: Int8BenchOptions): Promise<Int8BenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const iterations = options.iterations ?? 3;
  const rounds = options.rounds ?? 2;
  const runs: Record<Variant, ChildResult[]> = { fp32: [], int8: [] };
  for (let roundIndex = 0; roundIndex < rounds; roundIndex += 1) {
    // Alternating, so that a change in the (shared) machine's load falls on both variants.
    for (const variant of roundIndex % 2 === 0 ? (['fp32', 'int8'] as const) : (['int8', 'fp32'] as const)) {
      const run = await timeVariantInChild(options, variant, iterations);
      log(`  ${variant} process ${roundIndex + 1}/${rounds}: load ${Math.round(run.loadMs)} ms, first question ${Math.round(median(run.first.map((sample) => sample.wall!)))} ms (median of ${run.first.length})`);
      runs[variant].push(run);
    }
  }
  const fp32 = variantResult('fp32', runs.fp32);
  const int8 = variantResult('int8', runs.int8);
  const speedup: Record<string, number> = {};
  const stages: [string, number | undefined, number | undefined][] = [
    ...['captionVision', 'crossAttention', 'decoderPerStep', 'captionTotal', 'vqaVision', 'fusion', 'vqaTotal', 'wall'].map((key) => [`first.${key}`, fp32.firstQuestion[key], int8.firstQuestion[key]] as [string, number | undefined, number | undefined]),
    ['followUp.wall', fp32.followUpQuestion.wall, int8.followUpQuestion.wall],
    ['load', fp32.loadMs, int8.loadMs],
  ];
  for (const [key, reference, quantized] of stages) if (reference && quantized) speedup[key] = round(reference / quantized);

  let agreement: Int8Agreement | null = null;
  const images = await agreementImages(options.agreementImages ?? 12);
  if (images.length > 0) {
    log(`  agreement: ${images.length} images x ${QUESTIONS.length} questions, greedy captions`);
    const started = performance.now();
    const reference = await collectOutputs(options, 'fp32', images);
    const quantized = await collectOutputs(options, 'int8', images);
    agreement = compare(reference, quantized, images.length, performance.now() - started);
  }
  return {
    name: 'int8 against fp32 on the full-size stand-ins (random weights, real dimensions)',
    modelsDir: options.modelsDir,
    captionModel: options.captionModel,
    vqaModel: options.vqaModel,
    // The default scheduling (one core budget) gives every graph all the cores, one run at a time.
    threadsPerModel: availableParallelism(),
    graphMiB: graphSizes(options),
    fp32,
    int8,
    speedup,
    agreement,
    note: NOTE,
  };
}

export function printInt8(result: Int8BenchResult): void {
  console.log(`\n## ${result.name}: ${result.captionModel} + ${result.vqaModel}, ${result.threadsPerModel} onnxruntime thread(s) per graph, one graph at a time (the shared core budget)`);
  console.log(`medians over ${result.fp32.iterations} questions in ${result.fp32.processes} processes per variant, ms:`);
  console.table(Object.fromEntries(Object.keys(result.fp32.firstQuestion).map((key) => [key, { fp32: result.fp32.firstQuestion[key], int8: result.int8.firstQuestion[key] }])));
  console.log('follow-up question (fusion only), ms:');
  console.table(Object.fromEntries(Object.keys(result.fp32.followUpQuestion).map((key) => [key, { fp32: result.fp32.followUpQuestion[key], int8: result.int8.followUpQuestion[key] }])));
  console.table({
    fp32: { loadMs: result.fp32.loadMs, rssAfterLoadMiB: result.fp32.rssAfterLoadMiB, peakRssMiB: result.fp32.peakRssMiB },
    int8: { loadMs: result.int8.loadMs, rssAfterLoadMiB: result.int8.rssAfterLoadMiB, peakRssMiB: result.int8.peakRssMiB },
  });
  console.log('each process:');
  console.table(Object.fromEntries((['fp32', 'int8'] as const).flatMap((variant) => result[variant].perProcess.map((entry, index) => [`${variant} #${index + 1}`, entry]))));
  console.log('graph sizes, MiB:');
  console.table(result.graphMiB);
  console.log('speed-up (fp32 ms / int8 ms):');
  console.table(result.speedup);
  if (result.agreement) {
    console.log('agreement, int8 against fp32:');
    console.table(result.agreement);
  }
  console.log(result.note);
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      child: { type: 'string' },
      models: { type: 'string', default: join(root, 'models', 'full-size') },
      'caption-model': { type: 'string', default: 'blip-base-standin' },
      'vqa-model': { type: 'string', default: 'vle-base-standin' },
      image: { type: 'string', default: join(root, 'test', 'fixtures', 'eval', 'dogs.jpg') },
      iterations: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '2' },
      'agreement-images': { type: 'string', default: '12' },
      out: { type: 'string', default: join(root, 'bench', 'out', 'int8.json') },
    },
  });
  const options: Int8BenchOptions = {
    modelsDir: args.models!,
    captionModel: args['caption-model']!,
    vqaModel: args['vqa-model']!,
    image: args.image!,
    iterations: Number(args.iterations),
    rounds: Number(args.rounds),
    agreementImages: Number(args['agreement-images']),
  };
  if (args.child) {
    if (args.child !== 'fp32' && args.child !== 'int8') throw new Error(`--child fp32|int8, not ${args.child}`);
    console.log(`RESULT ${JSON.stringify(await timeVariant(options, args.child, options.iterations!))}`);
    return;
  }
  if (!hasInt8Variants(options.modelsDir, options.captionModel, options.vqaModel)) {
    throw new Error(`${options.modelsDir} has no ${options.captionModel} and ${options.vqaModel} with int8 variants: run .venv/bin/python models/make_test_models.py --full-size --int8 (or --int8-only).`);
  }
  console.log(`vqa-llm int8 benchmark: ${availableParallelism()} cores, node ${process.version}, image ${options.image}`);
  const result = await benchInt8(options);
  printInt8(result);
  mkdirSync(dirname(args.out!), { recursive: true });
  writeFileSync(args.out!, `${JSON.stringify({ command: 'node dist/bench/int8.js', date: new Date().toISOString(), machine: { cores: availableParallelism(), node: process.version }, int8: result }, null, 2)}\n`);
  console.log(`\nWrote ${args.out}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
