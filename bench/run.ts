// `npm run bench`: the proof of issue 14 in one run, and the per-stage latency behind it.
//   - onnxruntime's MatMul ceiling at 1 thread and at all cores (median over shapes and rounds; best kept too);
//   - the first question on an image and a follow-up, as the library runs them, on the tiny test models and on the
//     full-size stand-ins when `npm run models:full-size` made them (the proof uses the largest set measured);
//   - every graph alone at 1 thread and at all cores, its GFLOP (bench/flops.ts) and share of the ceiling, and the
//     PyTorch eager baseline at the same threads (bench/pytorch.ts) as a ratio;
//   - the first question and the follow-up against the all-cores bound (their GFLOP at the all-cores ceiling);
//   - the chain's orchestration, core sharing, int8 against fp32, RSS over weight bytes, cold start, the embedded
//     LLM and the server, each where its models exist;
//   - the targets table, printed last and stored in results.json under `proof.targets`.
// Parts can be skipped (--skip-*) to check the code path quickly; --help lists the options.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createVisionModels } from '../src/runtime/vision-models.js';
import { packageRoot } from '../src/paths.js';
import { questionFlops, type QuestionFlops } from './flops.js';
import { benchChain, type ChainBenchResult } from './chain.js';
import { benchInt8, hasInt8Variants, printInt8, type Int8BenchResult } from './int8.js';
import { benchLocalLlm, LOCAL_LLM_STAND_IN, printLocalLlm, type LocalLlmBenchResult } from './local-llm.js';
import { median, round } from './stats.js';
import { benchCoreBudget, type CoreBudgetBenchResult } from './core-budget.js';
import { benchLoadMemoryInChild, type LoadMemoryResult } from './load-memory.js';
import { writeLatencyChart } from './chart.js';
import { measureMatmulCeiling, type MatmulCeiling } from './matmul-ceiling.js';
import { benchStageThreads, STAGE_QUESTION, type StageThreadsResult } from './stage-threads.js';
import { benchColdStart, type ColdStartResult } from './cold-start.js';
import { benchPytorch } from './pytorch.js';
import { buildProof, machineInfo, printProof, type StageCompute } from './proof.js';
import type { TargetRow } from './targets.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

interface StageSummary {
  [stage: string]: number;
}

export interface ModelSetResult {
  name: string;
  modelsDir: string;
  captionModel: string;
  vqaModel: string;
  iterations: number;
  /** VLE tokens of the first question, special tokens included (what the fusion FLOPs are counted for). */
  questionTokens: number;
  /** VLE tokens of the follow-up question (FOLLOW_UP_QUESTION), special tokens included. */
  followUpTokens: number;
  firstQuestion: StageSummary;
  followUpQuestion: StageSummary;
  /** Each stage of the first question against the all-cores MatMul ceiling (every graph runs on all cores). */
  gflops: Record<string, StageCompute>;
  loadMs: number;
  peakRssMiB: number;
  /** Main-thread event-loop delay while the measured questions ran: inference and preprocessing are in workers. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

const root = packageRoot();
/** The follow-up asked on the same image after STAGE_QUESTION: its fusion is all it computes. */
const FOLLOW_UP_QUESTION = 'How many are there?';
const { values: args } = parseArgs({
  options: {
    help: { type: 'boolean', default: false },
    'tiny-only': { type: 'boolean', default: false },
    iterations: { type: 'string' },
    image: { type: 'string' },
    out: { type: 'string', default: join(root, 'bench', 'results.json') },
    chart: { type: 'string', default: join(root, 'bench', 'latency.svg') },
    threads: { type: 'string' },
    'ceiling-rounds': { type: 'string', default: '5' },
    'cold-start-runs': { type: 'string', default: '5' },
    'int8-rounds': { type: 'string', default: '2' },
    'int8-agreement-images': { type: 'string', default: '12' },
    'server-duration': { type: 'string', default: '10' },
    'skip-server': { type: 'boolean', default: false },
    'skip-int8': { type: 'boolean', default: false },
    'skip-cores': { type: 'boolean', default: false },
    'skip-chain': { type: 'boolean', default: false },
    'skip-stages': { type: 'boolean', default: false },
    'skip-pytorch': { type: 'boolean', default: false },
    'skip-memory': { type: 'boolean', default: false },
    'skip-cold-start': { type: 'boolean', default: false },
    'skip-llm': { type: 'boolean', default: false },
  },
});

const HELP = `node dist/bench/run.js [options]   (npm run bench -- [options])
  --tiny-only                 only the tiny test models (the proof then uses them: a check of the code path)
  --iterations N              questions per measurement (default: 20 tiny, 3 full-size, 2 core sharing)
  --threads 1,2               thread counts of the per-graph timings and the PyTorch baseline (default: 1 and all cores)
  --ceiling-rounds N          rounds of the MatMul ceiling, every shape once per round (default 5)
  --cold-start-runs N         runs of each cold-start process (default 5)
  --int8-rounds N, --int8-agreement-images N   bench/int8.ts's --rounds and --agreement-images (default 2, 12)
  --image PATH                the image asked about (default test/fixtures/eval/dogs.jpg)
  --out PATH, --chart PATH    where results.json and latency.svg go (default bench/)
  --server-duration S         seconds per server run (default 10)
  --skip-server --skip-int8 --skip-cores --skip-chain --skip-stages --skip-pytorch --skip-memory
  --skip-cold-start --skip-llm   leave a part out (its targets then read "not measured", naming the option);
                              --skip-stages leaves out the PyTorch baseline too (nothing to compare it with)
A part that fails is reported and left out the same way (its target's note says why); the others still run.`;

function summarize(samples: StageSummary[]): StageSummary {
  const keys = [...new Set(samples.flatMap((sample) => Object.keys(sample)))];
  return Object.fromEntries(keys.map((key) => [key, round(median(samples.map((sample) => sample[key] ?? 0)))]));
}

/** An option's integer value, at least `minimum` (1 unless said), or the fallback when the option is absent. */
function integerOption(name: string, value: string | undefined, fallback: number, minimum = 1): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < minimum) throw new Error(`--${name} must be an integer of at least ${minimum}, got ${value}`);
  return parsed;
}

async function benchModelSet(name: string, modelsDir: string, captionModel: string, vqaModel: string, image: string, iterations: number, ceilingAll: number): Promise<ModelSetResult> {
  const loadStarted = performance.now();
  const vision = await createVisionModels({ modelsDir, captionModel, vqaModel, offline: true });
  const loadMs = performance.now() - loadStarted;
  const bytes = readFileSync(image);
  const first: StageSummary[] = [];
  const followUp: StageSummary[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let questionTokens = 0;
  let followUpTokens = 0;
  try {
    questionTokens = vision.vqa.tokenize(STAGE_QUESTION).length;
    followUpTokens = vision.vqa.tokenize(FOLLOW_UP_QUESTION).length;
    // One unmeasured round warms onnxruntime's allocators and kernels.
    await Promise.all([vision.caption(bytes), vision.candidates(bytes, STAGE_QUESTION)]);
    loopDelay.enable();
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      vision.clearCache();
      const started = performance.now();
      const [caption, answers] = await Promise.all([vision.caption(bytes), vision.candidates(bytes, STAGE_QUESTION)]);
      const wall = performance.now() - started;
      first.push({
        wall,
        decode: caption.timings.decode ?? 0,
        captionPreprocess: caption.timings.preprocess ?? 0,
        captionVision: caption.timings.vision ?? 0,
        crossAttention: caption.timings.crossAttention ?? 0,
        decoder: caption.timings.decoder ?? 0,
        captionTotal: caption.timings.total ?? 0,
        vqaPreprocess: answers.timings.preprocess ?? 0,
        vqaVision: answers.timings.vision ?? 0,
        fusion: answers.timings.fusion ?? 0,
        vqaTotal: answers.timings.total ?? 0,
        captionTokens: caption.tokenIds.length,
      });
      const followStarted = performance.now();
      const [cachedCaption, cachedAnswers] = await Promise.all([vision.caption(bytes), vision.candidates(bytes, FOLLOW_UP_QUESTION)]);
      followUp.push({
        wall: performance.now() - followStarted,
        decode: cachedAnswers.timings.decode ?? 0,
        fusion: cachedAnswers.timings.fusion ?? 0,
        vqaTotal: cachedAnswers.timings.total ?? 0,
        captionTotal: cachedCaption.timings.total ?? 0,
      });
      if (!cachedAnswers.imageCached || !cachedCaption.cached) throw new Error('the follow-up question did not hit the per-image caches');
    }
    loopDelay.disable();
  } finally {
    await vision.dispose();
  }
  const firstSummary = summarize(first);
  const flops = questionFlops({ captionFolder: join(modelsDir, captionModel), vqaFolder: join(modelsDir, vqaModel), questionTokens, captionSteps: firstSummary.captionTokens! });
  const gflops: ModelSetResult['gflops'] = {};
  for (const stage of ['captionVision', 'crossAttention', 'decoder', 'vqaVision', 'fusion'] as const) {
    const ms = firstSummary[stage];
    if (!flops || !ms) continue;
    const gflopPerSecond = flops[stage].gflop / (ms / 1000);
    gflops[stage] = { gflop: Number(flops[stage].gflop.toPrecision(4)), ms, gflopPerSecond: round(gflopPerSecond, 1), shareOfCeiling: round(gflopPerSecond / ceilingAll, 3) };
  }
  return {
    name,
    modelsDir,
    captionModel,
    vqaModel,
    iterations,
    questionTokens,
    followUpTokens,
    firstQuestion: firstSummary,
    followUpQuestion: summarize(followUp),
    gflops,
    loadMs: round(loadMs),
    peakRssMiB: round(process.resourceUsage().maxRSS / 1024, 1),
    eventLoopDelayMs: { p50: round(loopDelay.percentile(50) / 1e6), p99: round(loopDelay.percentile(99) / 1e6), max: round(loopDelay.max / 1e6) },
  };
}

function printResult(result: ModelSetResult): void {
  console.log(`\n## ${result.name} (${result.captionModel} + ${result.vqaModel}), median of ${result.iterations}`);
  console.log(`load ${result.loadMs} ms, peak RSS so far ${result.peakRssMiB} MiB, event-loop delay p99 ${result.eventLoopDelayMs.p99} ms (max ${result.eventLoopDelayMs.max} ms)`);
  console.log('first question on an image (caption and candidates concurrently), ms:');
  console.table(result.firstQuestion);
  console.log('follow-up question on the same image (cached caption and image embeddings), ms:');
  console.table(result.followUpQuestion);
  if (Object.keys(result.gflops).length > 0) console.table(result.gflops);
}

function printChain(result: ChainBenchResult): void {
  console.log(`\n## VQA+LLM chain on ${result.name} (loopback LLM answering at once), median of ${result.iterations}, ms`);
  console.table({ firstQuestion: result.firstQuestion, followUpQuestion: result.followUpQuestion });
}

/** The server benchmark runs as its own process (it forks the server and drives it with autocannon). */
async function benchServer(images: 'same' | 'distinct', duration: string): Promise<unknown> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(root, 'dist', 'bench', 'server.js'), '--json', '--llm', 'fake', '--images', images, '--duration', duration], {
    cwd: root,
    maxBuffer: 16 * 1024 * 1024,
  });
  process.stdout.write(stdout.split('\n').filter((line) => !line.startsWith('RESULT ')).join('\n'));
  const line = stdout.split('\n').find((candidate) => candidate.startsWith('RESULT '));
  if (!line) throw new Error('bench/server.js printed no result');
  return JSON.parse(line.slice('RESULT '.length)) as unknown;
}

/** An error's first line, for a skip reason; a failed child process's message is its command line, so its last line on stderr is added. */
function firstLine(error: unknown): string {
  const line = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
  const stderr = (error as { stderr?: unknown }).stderr;
  const last = typeof stderr === 'string' ? stderr.trim().split('\n').at(-1)?.trim() : undefined;
  return last ? `${line} (stderr: ${last})` : line;
}

/**
 * Runs one part of the bench; a failure is printed and becomes the part's skip reason instead of ending the run, so
 * that one failing child process never costs the figures measured before it (or results.json).
 */
async function attempt<T>(part: string, run: () => Promise<T>): Promise<{ value: T } | { failed: string }> {
  try {
    return { value: await run() };
  } catch (error) {
    const failed = `${part} failed: ${firstLine(error)}`;
    console.log(`\n${failed}`);
    return { failed };
  }
}

/**
 * The first question's FLOPs with the follow-up counted for the follow-up's own question (its fusion), or the reason
 * they cannot be counted.
 */
function proofFlops(set: ModelSetResult): QuestionFlops | string {
  const folders = { captionFolder: join(set.modelsDir, set.captionModel), vqaFolder: join(set.modelsDir, set.vqaModel), captionSteps: set.firstQuestion.captionTokens! };
  const first = questionFlops({ ...folders, questionTokens: set.questionTokens });
  const followUp = questionFlops({ ...folders, questionTokens: set.followUpTokens });
  if (!first || !followUp) return `cannot count the FLOPs of ${set.captionModel} and ${set.vqaModel}: a dimension is missing from their config.json`;
  return { ...first, followUp: { gflop: followUp.fusion.gflop } };
}

function onnxruntimeVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  if (args.help) {
    console.log(HELP);
    return;
  }
  const cores = availableParallelism();
  const machine = machineInfo(onnxruntimeVersion());
  const image = args.image ?? join(root, 'test', 'fixtures', 'eval', 'dogs.jpg');
  const iterations = args.iterations === undefined ? undefined : integerOption('iterations', args.iterations, 1);
  const threadCounts = args.threads ? [...new Set(args.threads.split(',').map((value) => integerOption('threads', value, 1)))] : [...new Set([1, cores])];
  console.log(`vqa-llm runtime benchmark: ${machine.cpu}, ${cores} cores, AVX-512 ${machine.avx512}, VNNI ${machine.vnni}, node ${process.version}, onnxruntime ${machine.onnxruntime}, image ${image}`);
  // Other processes' load inflates every time (the ceiling less than the models): results.json keeps the load
  // average at both ends, so that a reader can tell a quiet run from a shared one.
  const loadAtStart = loadavg().map((value) => round(value));
  if (loadAtStart[0]! > cores / 2) console.log(`warning: load average ${loadAtStart[0]} on ${cores} cores: other processes are running, figures will be noisy`);

  // The ceiling at every thread count a stage runs on: 1, all cores, and any --threads.
  const ceiling: Record<string, MatmulCeiling> = {};
  for (const threads of [...new Set([1, cores, ...threadCounts])].sort((a, b) => a - b)) {
    ceiling[threads] = await measureMatmulCeiling({ threads, rounds: integerOption('ceiling-rounds', args['ceiling-rounds'], 5) });
    const measured = ceiling[threads]!;
    console.log(`onnxruntime MatMul ceiling, ${threads} thread(s): median ${measured.median} GFLOP/s over ${Object.keys(measured.shapes).length} shapes x ${measured.rounds} rounds (best ${measured.best}, ${measured.bestShape})`);
  }
  const ceilingAll = ceiling[cores]!.median;

  const results: ModelSetResult[] = [];
  const chainResults: ChainBenchResult[] = [];
  const tinyDir = join(root, 'test', 'fixtures', 'models');
  results.push(await benchModelSet('tiny test models', tinyDir, 'tiny-blip', 'tiny-vle', image, iterations ?? 20, ceilingAll));
  printResult(results.at(-1)!);
  if (!args['skip-chain']) {
    const chain = await attempt('chain (tiny test models)', () => benchChain('tiny test models', tinyDir, 'tiny-blip', 'tiny-vle', image, iterations ?? 20));
    if ('value' in chain) {
      chainResults.push(chain.value);
      printChain(chain.value);
    }
  }
  const fullSize = join(root, 'models', 'full-size');
  const hasFullSize = existsSync(join(fullSize, 'blip-base-standin')) && existsSync(join(fullSize, 'vle-base-standin'));
  const useFullSize = !args['tiny-only'] && hasFullSize;
  if (useFullSize) {
    results.push(await benchModelSet('full-size stand-ins (random weights, real dimensions)', fullSize, 'blip-base-standin', 'vle-base-standin', image, iterations ?? 3, ceilingAll));
    printResult(results.at(-1)!);
    if (!args['skip-chain']) {
      const chain = await attempt('chain (full-size stand-ins)', () => benchChain('full-size stand-ins', fullSize, 'blip-base-standin', 'vle-base-standin', image, iterations ?? 3));
      if ('value' in chain) {
        chainResults.push(chain.value);
        printChain(chain.value);
      }
    }
  } else if (!args['tiny-only']) {
    console.log('\nFull-size stand-ins not found: `npm run models:full-size` writes them to models/full-size/ (needs the .venv torch, ~10 min).');
  }
  // The proof is made on the largest model set measured.
  const proofSet = results.at(-1)!;
  // Why a target has no figure: the option that left its part out, or the part's failure.
  const skipped: Partial<Record<TargetRow['id'], string>> = {};

  let stageThreads: StageThreadsResult | null = null;
  let stagesMissing: string | undefined = args['skip-stages'] ? '--skip-stages' : undefined;
  if (!args['skip-stages']) {
    console.log(`\n## Each graph alone at ${threadCounts.join(' and ')} thread(s): ${proofSet.name}`);
    const stages = await attempt('per-graph timings', () => benchStageThreads({ modelsDir: proofSet.modelsDir, captionModel: proofSet.captionModel, vqaModel: proofSet.vqaModel, image, threads: threadCounts, iterations: iterations ?? (useFullSize ? 3 : 10) }));
    if ('value' in stages) {
      stageThreads = stages.value;
      console.table(stageThreads.threads);
      if (new Set(Object.values(stageThreads.outputs)).size > 1) console.log('note: caption tokens or top answer differ between thread counts (float reductions in another order)');
    } else stagesMissing = stages.failed;
  }
  let pytorch: Awaited<ReturnType<typeof benchPytorch>> | null = null;
  if (args['skip-pytorch']) skipped.pytorch = 'not run: --skip-pytorch';
  else if (stagesMissing) {
    // PyTorch is judged against the per-graph ONNX timings: without them its minutes would compare with nothing.
    pytorch = { skipped: `no per-graph ONNX timings to compare with (${stagesMissing})` };
    console.log(`\n## PyTorch eager baseline: ${pytorch.skipped}`);
  } else {
    console.log(`\n## PyTorch eager baseline at ${threadCounts.join(' and ')} thread(s)`);
    const baseline = await attempt('PyTorch baseline', () => benchPytorch({ modelsDir: proofSet.modelsDir, image, threads: threadCounts, iterations: iterations ?? 3 }));
    pytorch = 'value' in baseline ? baseline.value : { skipped: baseline.failed };
    if ('skipped' in pytorch) console.log(`skipped: ${pytorch.skipped}`);
    else console.table(pytorch.threads);
  }

  // How the two models share the cores: the 0.1 split (half the cores each, spinning pool threads) against the
  // shared budget (every graph on all cores, one run at a time), one user and four at once.
  const sharing: CoreBudgetBenchResult[] = [];
  if (useFullSize && !args['skip-cores']) {
    const models = { modelsDir: fullSize, captionModel: 'blip-base-standin', vqaModel: 'vle-base-standin' };
    console.log('\n## Sharing the cores (full-size stand-ins), ms');
    const shared = await attempt('core sharing', async () => [
      await benchCoreBudget({ ...models, scheduling: 'split', spin: true, iterations: iterations ?? 2 }),
      await benchCoreBudget({ ...models, scheduling: 'budget', iterations: iterations ?? 2 }),
    ]);
    if ('value' in shared) {
      sharing.push(...shared.value);
      console.table(Object.fromEntries(sharing.map((result) => [`${result.scheduling}${result.spin ? ' (spinning)' : ''}`, { ...result.firstQuestion, followUpMs: result.followUpMs, ...result.concurrent }])));
      const same = JSON.stringify(sharing[0]!.answers) === JSON.stringify(sharing[1]!.answers);
      console.log(`captions and top answers under both schedulings: ${same ? 'identical' : 'DIFFERENT'}`);
    }
  }
  // Load and memory in a process of their own, so that RSS is the models' and not what the runs above left.
  let memory: LoadMemoryResult | null = null;
  if (args['skip-memory']) skipped.memory = 'not run: --skip-memory';
  else {
    const measured = await attempt('memory (bench/load-memory.js)', () => benchLoadMemoryInChild({ tiny: !useFullSize }));
    if ('value' in measured) {
      memory = measured.value;
      console.log(`\n## Memory (${useFullSize ? 'full-size stand-ins' : 'tiny test models'}, a fresh process)`);
      const split = memory.rssAfterLoadSplitMiB ? ` (${memory.rssAfterLoadSplitMiB.anonymous} MiB anonymous, ${memory.rssAfterLoadSplitMiB.file} MiB file pages)` : '';
      console.log(`load ${memory.loadMs} ms; RSS ${memory.rssAfterLoadMiB} MiB after load${split} (${memory.rssAfterLoadRatio}x the ${memory.weightMiB} MiB of graphs), ${memory.rssAfterQuestionMiB} MiB after a question (${memory.rssAfterQuestionRatio}x)`);
    } else skipped.memory = measured.failed;
  }
  let int8: Int8BenchResult | null = null;
  if (!useFullSize) skipped.int8 = 'not run: int8 is measured on the full-size stand-ins only';
  else if (args['skip-int8']) skipped.int8 = 'not run: --skip-int8';
  else {
    if (hasInt8Variants(fullSize, 'blip-base-standin', 'vle-base-standin')) {
      console.log('\n## int8 against fp32 on the full-size stand-ins (each variant in its own processes)');
      const measured = await attempt('int8 against fp32', () => benchInt8({
        modelsDir: fullSize,
        captionModel: 'blip-base-standin',
        vqaModel: 'vle-base-standin',
        image,
        iterations: iterations ?? 3,
        rounds: integerOption('int8-rounds', args['int8-rounds'], 2),
        agreementImages: integerOption('int8-agreement-images', args['int8-agreement-images'], 12, 0),
      }));
      if ('value' in measured) {
        int8 = measured.value;
        printInt8(int8);
      } else skipped.int8 = measured.failed;
    } else {
      skipped.int8 = 'not run: no int8 variants of the full-size stand-ins';
      console.log('\nNo int8 variants of the full-size stand-ins: `.venv/bin/python models/make_test_models.py --full-size --int8-only` adds them.');
    }
  }
  let coldStart: ColdStartResult | null = null;
  if (args['skip-cold-start']) skipped.coldStart = 'not run: --skip-cold-start';
  else {
    const measured = await attempt('cold start', () => benchColdStart({ runs: integerOption('cold-start-runs', args['cold-start-runs'], 5), image }));
    if ('value' in measured) {
      coldStart = measured.value;
      console.log(`\n## Cold start (tiny models, median of ${coldStart.runs}): \`${coldStart.command}\` ${coldStart.askMs} ms; import alone ${coldStart.importMs} ms`);
    } else skipped.coldStart = measured.failed;
  }
  // The embedded LLM, only where its full-size stand-in was made (models/make_tiny_gguf.py --full-size).
  let localLlm: LocalLlmBenchResult | null = null;
  if (useFullSize && !args['skip-llm'] && existsSync(join(fullSize, LOCAL_LLM_STAND_IN))) {
    const measured = await attempt('embedded LLM', () => benchLocalLlm({ modelPath: join(fullSize, LOCAL_LLM_STAND_IN), visionDir: fullSize, iterations: iterations ?? 3, threads: cores, replyTokens: 32 }));
    if ('value' in measured) {
      localLlm = measured.value;
      printLocalLlm(localLlm);
    }
  } else if (useFullSize && !args['skip-llm']) {
    console.log('\nNo embedded-LLM stand-in: `.venv/bin/python models/make_tiny_gguf.py --full-size` writes it (~1 GB).');
  }
  const server: unknown[] = [];
  if (!args['skip-server']) {
    console.log('\n## Server: POST /v1/chat/completions on the tiny models, instant loopback LLM');
    for (const images of ['distinct', 'same'] as const) {
      const measured = await attempt(`server (${images} images)`, () => benchServer(images, args['server-duration']!));
      server.push('value' in measured ? measured.value : { images, skipped: measured.failed });
    }
  }

  const counted = proofFlops(proofSet);
  if (typeof counted === 'string') {
    console.log(`\n${counted}`);
    skipped.firstQuestion = counted;
    skipped.followUp = counted;
  }
  const first = proofSet.firstQuestion;
  const proof = buildProof({
    modelSet: proofSet.name,
    fullSize: useFullSize,
    machine,
    ceiling,
    allCores: cores,
    flops: typeof counted === 'string' ? null : counted,
    skipped,
    questionTokens: proofSet.questionTokens,
    followUpTokens: proofSet.followUpTokens,
    captionSteps: first.captionTokens!,
    firstQuestion: {
      wall: first.wall!,
      followUpWall: proofSet.followUpQuestion.wall!,
      stages: { captionVision: first.captionVision, crossAttention: first.crossAttention, decoder: first.decoder, vqaVision: first.vqaVision, fusion: first.fusion },
    },
    stageThreads,
    pytorch,
    int8,
    coldStart,
    memory,
  });
  printProof(proof);

  mkdirSync(dirname(args.out!), { recursive: true });
  writeFileSync(
    args.out!,
    `${JSON.stringify(
      {
        command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
        date: new Date().toISOString(),
        machine: { ...machine, loadAverage: { start: loadAtStart, end: loadavg().map((value) => round(value)) } },
        matmulCeilingGflops: Object.fromEntries(Object.entries(ceiling).map(([threads, value]) => [threads, { median: value.median, best: value.best, bestShape: value.bestShape }])),
        proof,
        runtime: results,
        stageThreads,
        pytorch,
        chain: chainResults,
        sharing,
        memory,
        int8,
        coldStart,
        localLlm,
        server,
      },
      null,
      2,
    )}\n`,
  );
  writeLatencyChart(args.out!, args.chart!);
  console.log(`\nWrote ${args.out} and ${args.chart}`);
}

await main();
