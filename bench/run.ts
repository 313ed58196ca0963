// `npm run bench`: per-stage latency of the vision runtime (first question on an image, then a follow-up
// question), peak RSS, and achieved GFLOP/s against an onnxruntime MatMul ceiling measured in the same run.
// Runs on the tiny test models always, and on the full-size stand-ins when `npm run models:full-size` made them;
// int8 against fp32 (bench/int8.ts) when the stand-ins also have int8 variants (make_test_models.py --full-size --int8).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { OnnxGraph, floatTensor } from '../src/runtime/onnx-session.js';
import { createVisionModels } from '../src/runtime/vision-models.js';
import { packageRoot } from '../src/paths.js';
import { transformerFlops, type FlopEstimate } from './flops.js';
import { benchChain, type ChainBenchResult } from './chain.js';
import { benchInt8, hasInt8Variants, printInt8, type Int8BenchResult } from './int8.js';
import { benchLocalLlm, LOCAL_LLM_STAND_IN, printLocalLlm, type LocalLlmBenchResult } from './local-llm.js';
import { median } from './stats.js';
import { benchCoreBudget, type CoreBudgetBenchResult } from './core-budget.js';
import { benchLoadMemory, type LoadMemoryResult } from './load-memory.js';
import { writeLatencyChart } from './chart.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

interface StageSummary {
  [stage: string]: number;
}

export interface ModelSetResult {
  name: string;
  captionModel: string;
  vqaModel: string;
  iterations: number;
  firstQuestion: StageSummary;
  followUpQuestion: StageSummary;
  gflops: Record<string, { gflop: number; ms: number; gflopPerSecond: number; shareOfCeiling: number }>;
  loadMs: number;
  peakRssMiB: number;
  /** Main-thread event-loop delay while the measured questions ran: inference and preprocessing are in workers. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

const root = packageRoot();
const { values: args } = parseArgs({
  options: {
    'tiny-only': { type: 'boolean', default: false },
    iterations: { type: 'string' },
    image: { type: 'string' },
    out: { type: 'string', default: join(root, 'bench', 'results.json') },
    chart: { type: 'string', default: join(root, 'bench', 'latency.svg') },
    'server-duration': { type: 'string', default: '10' },
    'skip-server': { type: 'boolean', default: false },
    'skip-int8': { type: 'boolean', default: false },
    'skip-cores': { type: 'boolean', default: false },
  },
});

function summarize(samples: StageSummary[]): StageSummary {
  const keys = [...new Set(samples.flatMap((sample) => Object.keys(sample)))];
  return Object.fromEntries(keys.map((key) => [key, round(median(samples.map((sample) => sample[key] ?? 0)))]));
}

function round(value: number, digits = 2): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/**
 * onnxruntime's best MatMul throughput on this machine with these threads: the best of the GEMM shapes the
 * models run (ViT MLP and QKV at 577 and 1297 tokens, and a square one), each best-of-N. A single square 1024^3
 * product understates it by half on AVX-512 machines, which would make the models look faster than the ceiling.
 */
async function matmulCeiling(threads: number): Promise<{ gflops: number; shape: string }> {
  const graph = await OnnxGraph.create(
    join(root, 'bench', 'matmul.onnx'),
    {
      name: 'matmul',
      inputs: [
        { name: 'A', dtype: 'float32', shape: ['m', 'k'] },
        { name: 'B', dtype: 'float32', shape: ['k', 'n'] },
      ],
      outputs: [{ name: 'Y', dtype: 'float32', shape: ['m', 'n'] }],
    },
    { intraOpNumThreads: threads },
  );
  let best = { gflops: 0, shape: '' };
  for (const [m, k, n] of [
    [577, 768, 3072],
    [1297, 768, 3072],
    [1297, 3072, 768],
    [1297, 768, 2304],
    [2048, 2048, 2048],
  ] as const) {
    const a = floatTensor(Float32Array.from({ length: m * k }, (_, index) => ((index * 7) % 13) / 13), [m, k]);
    const b = floatTensor(Float32Array.from({ length: k * n }, (_, index) => ((index * 5) % 11) / 11), [k, n]);
    await graph.run({ A: a, B: b });
    let fastest = Number.POSITIVE_INFINITY;
    for (let repeat = 0; repeat < 6; repeat += 1) {
      const started = performance.now();
      await graph.run({ A: a, B: b });
      fastest = Math.min(fastest, performance.now() - started);
    }
    const gflops = (2 * m * k * n) / (fastest / 1000) / 1e9;
    if (gflops > best.gflops) best = { gflops, shape: `${m}x${k}x${n}` };
  }
  await graph.dispose();
  return best;
}

async function benchModelSet(name: string, modelsDir: string, captionModel: string, vqaModel: string, image: string, iterations: number, ceiling: number): Promise<ModelSetResult> {
  const loadStarted = performance.now();
  const vision = await createVisionModels({ modelsDir, captionModel, vqaModel, offline: true });
  const loadMs = performance.now() - loadStarted;
  const bytes = readFileSync(image);
  const first: StageSummary[] = [];
  const followUp: StageSummary[] = [];
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  try {
    // One unmeasured round warms onnxruntime's allocators and kernels.
    await Promise.all([vision.caption(bytes), vision.candidates(bytes, 'What is in the picture?')]);
    loopDelay.enable();
    for (let iteration = 0; iteration < iterations; iteration += 1) {
      vision.clearCache();
      const started = performance.now();
      const [caption, answers] = await Promise.all([vision.caption(bytes), vision.candidates(bytes, 'What is in the picture?')]);
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
      const [cachedCaption, cachedAnswers] = await Promise.all([vision.caption(bytes), vision.candidates(bytes, 'How many are there?')]);
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
  const estimates: Record<string, FlopEstimate | undefined> = transformerFlops(join(modelsDir, captionModel), join(modelsDir, vqaModel));
  const gflops: ModelSetResult['gflops'] = {};
  const stageOf: Record<string, string> = { captionVision: 'captionVision', vqaVision: 'vqaVision', fusion: 'fusion' };
  for (const [stage, key] of Object.entries(stageOf)) {
    const estimate = estimates[stage];
    const ms = firstSummary[key];
    if (!estimate || !ms) continue;
    const gflopPerSecond = estimate.gflop / (ms / 1000);
    gflops[stage] = { gflop: round(estimate.gflop, 3), ms, gflopPerSecond: round(gflopPerSecond), shareOfCeiling: round(gflopPerSecond / ceiling, 3) };
  }
  return {
    name,
    captionModel,
    vqaModel,
    iterations,
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

async function main(): Promise<void> {
  const cores = availableParallelism();
  const image = args.image ?? join(root, 'test', 'fixtures', 'eval', 'dogs.jpg');
  console.log(`vqa-llm runtime benchmark: ${cores} cores, node ${process.version}, image ${image}`);
  const perModelThreads = Math.max(1, Math.floor(cores / 2));
  const single = await matmulCeiling(perModelThreads);
  const all = await matmulCeiling(cores);
  const ceiling = single.gflops;
  const ceilingAll = all.gflops;
  console.log(
    `onnxruntime MatMul ceiling: ${round(ceiling)} GFLOP/s with ${perModelThreads} thread(s) (one model's share; best shape ${single.shape}), ${round(ceilingAll)} GFLOP/s with ${cores} (${all.shape})`,
  );

  const results: ModelSetResult[] = [];
  const chainResults: ChainBenchResult[] = [];
  const iterations = args.iterations ? Number(args.iterations) : undefined;
  const tinyDir = join(root, 'test', 'fixtures', 'models');
  results.push(await benchModelSet('tiny test models', tinyDir, 'tiny-blip', 'tiny-vle', image, iterations ?? 20, ceiling));
  printResult(results.at(-1)!);
  chainResults.push(await benchChain('tiny test models', tinyDir, 'tiny-blip', 'tiny-vle', image, iterations ?? 20));
  printChain(chainResults.at(-1)!);
  const fullSize = join(root, 'models', 'full-size');
  if (!args['tiny-only'] && existsSync(join(fullSize, 'blip-base-standin')) && existsSync(join(fullSize, 'vle-base-standin'))) {
    results.push(await benchModelSet('full-size stand-ins (random weights, real dimensions)', fullSize, 'blip-base-standin', 'vle-base-standin', image, iterations ?? 3, ceiling));
    printResult(results.at(-1)!);
    chainResults.push(await benchChain('full-size stand-ins', fullSize, 'blip-base-standin', 'vle-base-standin', image, iterations ?? 3));
    printChain(chainResults.at(-1)!);
  } else if (!args['tiny-only']) {
    console.log('\nFull-size stand-ins not found: `npm run models:full-size` writes them to models/full-size/ (needs python3-torch, ~10 min).');
  }
  // How the two models share the cores: the 0.1 split (half the cores each, spinning pool threads) against the
  // shared budget (every graph on all cores, one run at a time), one user and four at once; then load and memory.
  const sharing: CoreBudgetBenchResult[] = [];
  let memory: LoadMemoryResult | null = null;
  if (!args['tiny-only'] && !args['skip-cores'] && existsSync(join(fullSize, 'blip-base-standin')) && existsSync(join(fullSize, 'vle-base-standin'))) {
    const models = { modelsDir: fullSize, captionModel: 'blip-base-standin', vqaModel: 'vle-base-standin' };
    console.log('\n## Sharing the cores (full-size stand-ins), ms');
    sharing.push(await benchCoreBudget({ ...models, scheduling: 'split', spin: true, iterations: iterations ?? 2 }));
    sharing.push(await benchCoreBudget({ ...models, scheduling: 'budget', iterations: iterations ?? 2 }));
    console.table(Object.fromEntries(sharing.map((result) => [`${result.scheduling}${result.spin ? ' (spinning)' : ''}`, { ...result.firstQuestion, followUpMs: result.followUpMs, ...result.concurrent }])));
    const same = JSON.stringify(sharing[0]!.answers) === JSON.stringify(sharing[1]!.answers);
    console.log(`captions and top answers under both schedulings: ${same ? 'identical' : 'DIFFERENT'}`);
    memory = await benchLoadMemory(models);
    console.log(`load ${memory.loadMs} ms; RSS ${memory.rssAfterLoadMiB} MiB after load (${memory.rssAfterLoadRatio}x the ${memory.weightMiB} MiB of graphs), ${memory.rssAfterQuestionMiB} MiB after a question (${memory.rssAfterQuestionRatio}x)`);
  }
  let int8: Int8BenchResult | null = null;
  if (!args['tiny-only'] && !args['skip-int8']) {
    if (hasInt8Variants(fullSize, 'blip-base-standin', 'vle-base-standin')) {
      console.log('\n## int8 against fp32 on the full-size stand-ins (each variant in its own processes)');
      int8 = await benchInt8({ modelsDir: fullSize, captionModel: 'blip-base-standin', vqaModel: 'vle-base-standin', image, iterations: iterations ?? 3 });
      printInt8(int8);
    } else {
      console.log('\nNo int8 variants of the full-size stand-ins: `.venv/bin/python models/make_test_models.py --full-size --int8-only` adds them.');
    }
  }
  // The embedded LLM, only where its full-size stand-in was made (models/make_tiny_gguf.py --full-size).
  let localLlm: LocalLlmBenchResult | null = null;
  if (!args['tiny-only'] && existsSync(join(fullSize, LOCAL_LLM_STAND_IN))) {
    localLlm = await benchLocalLlm({ modelPath: join(fullSize, LOCAL_LLM_STAND_IN), visionDir: fullSize, iterations: iterations ?? 3, threads: cores, replyTokens: 32 });
    printLocalLlm(localLlm);
  } else if (!args['tiny-only']) {
    console.log('\nNo embedded-LLM stand-in: `.venv/bin/python models/make_tiny_gguf.py --full-size` writes it (~1 GB).');
  }
  const server: unknown[] = [];
  if (!args['skip-server']) {
    console.log('\n## Server: POST /v1/chat/completions on the tiny models, instant loopback LLM');
    for (const images of ['distinct', 'same'] as const) server.push(await benchServer(images, args['server-duration']!));
  }
  mkdirSync(dirname(args.out!), { recursive: true });
  writeFileSync(
    args.out!,
    `${JSON.stringify(
      {
        command: 'npm run bench',
        date: new Date().toISOString(),
        machine: { cores, node: process.version },
        matmulCeilingGflops: { threads: perModelThreads, value: round(ceiling), shape: single.shape, allCores: round(ceilingAll), allCoresShape: all.shape },
        runtime: results,
        chain: chainResults,
        sharing,
        memory,
        int8,
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
