// Issue 14's "bench as the proof": the figures of one `npm run bench` put against the limits they are judged by.
// The MatMul ceiling (median of shapes and rounds) at 1 and all threads; each stage's GFLOP and share of the
// ceiling at the threads it ran on; the first question and the follow-up against the all-cores bound (their GFLOP
// at the all-cores ceiling); ONNX against PyTorch eager per stage at the same threads; int8 against fp32; cold
// start; RSS over the weight bytes; and the targets table.
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import type { ColdStartResult } from './cold-start.js';
import type { QuestionFlops } from './flops.js';
import type { Int8BenchResult } from './int8.js';
import type { LoadMemoryResult } from './load-memory.js';
import type { MatmulCeiling } from './matmul-ceiling.js';
import type { StageThreadsResult } from './stage-threads.js';
import { round } from './stats.js';
import { evaluateTargets, type TargetInputs, type TargetRow } from './targets.js';

/** The stages PyTorch eager is timed on (bench/pytorch.ts), in ms. */
export type PytorchStage = 'captionVision' | 'decoderStep' | 'vqaVision' | 'fusion';
export const PYTORCH_STAGES: readonly PytorchStage[] = ['captionVision', 'decoderStep', 'vqaVision', 'fusion'];

/** bench/pytorch.ts's result: median ms per stage per thread count (keys: thread counts). */
export interface PytorchBaseline {
  torch: string;
  threads: Record<string, Record<PytorchStage, number>>;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  /** From /proc/cpuinfo's x86 flags; null where there are none (featuresUnknown says why). */
  avx512: boolean | null;
  vnni: boolean | null;
  featuresUnknown?: string;
  node: string;
  onnxruntime: string;
}

/** A stage's compute at one thread count. */
export interface StageCompute {
  ms: number;
  gflop: number;
  gflopPerSecond: number;
  /** gflopPerSecond over the median MatMul ceiling at the same threads. */
  shareOfCeiling: number;
}

export interface BoundRatio {
  gflop: number;
  /** gflop at the all-cores median ceiling, ms. */
  boundMs: number;
  /** Measured wall time, ms (median). */
  measuredMs: number;
  ratio: number;
}

export interface Proof {
  modelSet: string;
  fullSize: boolean;
  machine: MachineInfo;
  /** Keyed by thread count. */
  ceiling: Record<string, MatmulCeiling>;
  /**
   * GFLOP per stage and per question; questionTokens (first question), followUpTokens (the follow-up's fusion) and
   * captionSteps are what they were counted for. null when the model folders lack a dimension (see skipped).
   */
  flops: (Record<string, number> & { questionTokens: number; followUpTokens: number; captionSteps: number }) | null;
  /** Each graph alone at each thread count (bench/stage-threads.ts); keyed by threads, then stage. */
  stages: Record<string, Record<string, StageCompute>>;
  /** The first question as the library runs it by default (caption and candidates asked at once), all cores. */
  firstQuestionStages: Record<string, StageCompute>;
  /**
   * null without FLOP counts. followUp counts the follow-up's fusion whole (issue 14's bound); followUpWork only what
   * it computes, fusion's image part coming from the worker's cache.
   */
  bound: { allCoresThreads: number; ceilingGflops: number; firstQuestion: BoundRatio; followUp: BoundRatio; followUpWork: BoundRatio } | null;
  /** ONNX ms / PyTorch ms per stage per thread count (below 1: onnxruntime is faster), and the torch version. */
  pytorch: { torch: string; onnxOverPytorch: Record<string, Partial<Record<PytorchStage, number>>>; onnxMs: Record<string, Partial<Record<PytorchStage, number>>>; pytorchMs: PytorchBaseline['threads'] } | { skipped: string } | null;
  int8: { speedup: Record<string, number>; slowestGraph: string; slowestGraphSpeedup: number; firstQuestionSpeedup: number | null; top1Agreement: number | null; captionAgreement: number | null; vnni: boolean | null; vnniUnknown?: string } | null;
  coldStart: ColdStartResult | null;
  memory: { weightMiB: number; rssAfterLoadMiB: number; ratio: number; rssAfterQuestionMiB: number; ratioAfterQuestion: number; rssAfterLoadSplitMiB?: { anonymous: number; file: number } } | null;
  /** Why a part has no figures (it failed, or an option skipped it), by target row. */
  skipped: Partial<Record<TargetRow['id'], string>>;
  targets: TargetRow[];
}

/** The first question's measured stages as the model-set bench reports them, ms (medians). */
export interface FirstQuestionTimes {
  wall: number;
  followUpWall: number;
  stages: Partial<Record<'captionVision' | 'crossAttention' | 'decoder' | 'vqaVision' | 'fusion', number>>;
}

export interface ProofInputs {
  modelSet: string;
  /** Whether modelSet is the full-size stand-ins, which the targets are set for. */
  fullSize: boolean;
  machine: MachineInfo;
  ceiling: Record<string, MatmulCeiling>;
  /** Thread count of the all-cores ceiling. */
  allCores: number;
  /** The first question's stages, with followUp counted for the follow-up's own question; null: not countable. */
  flops: QuestionFlops | null;
  questionTokens: number;
  /** Tokens of the follow-up question (its fusion is the follow-up's FLOPs). */
  followUpTokens: number;
  captionSteps: number;
  firstQuestion: FirstQuestionTimes;
  stageThreads: StageThreadsResult | null;
  pytorch: PytorchBaseline | { skipped: string } | null;
  int8: Int8BenchResult | null;
  coldStart: ColdStartResult | null;
  memory: LoadMemoryResult | null;
  /** Why a part has no figures (it failed, or an option skipped it), by target row; shown in the targets table. */
  skipped?: Partial<Record<TargetRow['id'], string>>;
}

const COMPUTE_STAGES = ['captionVision', 'crossAttention', 'decoder', 'vqaVision', 'fusion'] as const;
/** int8's per-graph speed-ups (bench/int8.ts keys) that the int8 target is judged on. */
const INT8_GRAPHS = ['first.captionVision', 'first.crossAttention', 'first.decoderPerStep', 'first.vqaVision', 'first.fusion'] as const;

/** Four significant digits: GFLOP of the tiny models are thousandths, of the stand-ins hundreds. */
const significant = (value: number): number => Number(value.toPrecision(4));

function compute(ms: number | undefined, gflop: number, ceiling: number | undefined): StageCompute | undefined {
  if (!ms || !(ms > 0)) return undefined;
  const gflopPerSecond = gflop / (ms / 1000);
  return { ms: round(ms), gflop: significant(gflop), gflopPerSecond: round(gflopPerSecond, 1), shareOfCeiling: ceiling ? round(gflopPerSecond / ceiling, 3) : Number.NaN };
}

function stageComputes(times: Partial<Record<string, number>>, flops: QuestionFlops, ceiling: number | undefined): Record<string, StageCompute> {
  const result: Record<string, StageCompute> = {};
  for (const stage of COMPUTE_STAGES) {
    const value = compute(times[stage], flops[stage].gflop, ceiling);
    if (value) result[stage] = value;
  }
  return result;
}

function boundRatio(gflop: number, ceiling: number, measuredMs: number): BoundRatio {
  const boundMs = (gflop / ceiling) * 1000;
  return { gflop: significant(gflop), boundMs: round(boundMs), measuredMs: round(measuredMs), ratio: round(measuredMs / boundMs, 3) };
}

/**
 * Puts the measurements of one bench run together and judges the targets. Pure: every figure comes in through
 * `inputs`.
 *
 * @example
 * const proof = buildProof({ modelSet, machine: machineInfo(), ceiling, allCores: 2, flops, ... });
 * printProof(proof);
 */
export function buildProof(inputs: ProofInputs): Proof {
  const ceilingAll = inputs.ceiling[inputs.allCores]?.median;
  if (!ceilingAll) throw new Error(`no MatMul ceiling measured at ${inputs.allCores} threads`);
  const flopCounts = inputs.flops;
  const stages: Proof['stages'] = {};
  for (const [threads, times] of Object.entries(flopCounts ? (inputs.stageThreads?.threads ?? {}) : {})) {
    stages[threads] = stageComputes(times as unknown as Record<string, number>, flopCounts!, inputs.ceiling[threads]?.median);
  }
  const bound = flopCounts
    ? {
        allCoresThreads: inputs.allCores,
        ceilingGflops: ceilingAll,
        firstQuestion: boundRatio(flopCounts.firstQuestion.gflop, ceilingAll, inputs.firstQuestion.wall),
        followUp: boundRatio(flopCounts.followUp.gflop, ceilingAll, inputs.firstQuestion.followUpWall),
        followUpWork: boundRatio(flopCounts.followUp.gflop - flopCounts.fusionImage.gflop, ceilingAll, inputs.firstQuestion.followUpWall),
      }
    : null;

  let pytorch: Proof['pytorch'] = null;
  let slowestPytorch: TargetInputs['pytorch'];
  if (inputs.pytorch && 'skipped' in inputs.pytorch) {
    pytorch = { skipped: inputs.pytorch.skipped };
    slowestPytorch = { skipped: inputs.pytorch.skipped };
  } else if (inputs.pytorch) {
    const onnxOverPytorch: Record<string, Partial<Record<PytorchStage, number>>> = {};
    const onnxMs: Record<string, Partial<Record<PytorchStage, number>>> = {};
    let worst: { speedup: number; stage: string; threads: string } | undefined;
    for (const [threads, torchTimes] of Object.entries(inputs.pytorch.threads)) {
      const onnx = inputs.stageThreads?.threads[threads];
      if (!onnx) continue;
      onnxOverPytorch[threads] = {};
      onnxMs[threads] = {};
      for (const stage of PYTORCH_STAGES) {
        const reference = torchTimes[stage];
        const ours = onnx[stage];
        if (!(reference > 0) || !(ours > 0)) continue;
        onnxMs[threads]![stage] = ours;
        onnxOverPytorch[threads]![stage] = round(ours / reference, 3);
        const speedup = reference / ours;
        if (!worst || speedup < worst.speedup) worst = { speedup: round(speedup, 3), stage, threads };
      }
    }
    pytorch = { torch: inputs.pytorch.torch, onnxOverPytorch, onnxMs, pytorchMs: inputs.pytorch.threads };
    slowestPytorch = worst ?? { skipped: 'no thread count timed by both ONNX and PyTorch' };
  }

  let int8: Proof['int8'] = null;
  if (inputs.int8) {
    const graphs = INT8_GRAPHS.filter((key) => inputs.int8!.speedup[key] !== undefined);
    const slowest = graphs.reduce<string | undefined>((worst, key) => (worst === undefined || inputs.int8!.speedup[key]! < inputs.int8!.speedup[worst]! ? key : worst), undefined);
    if (slowest) {
      int8 = {
        speedup: inputs.int8.speedup,
        slowestGraph: slowest.replace(/^first\./, ''),
        slowestGraphSpeedup: inputs.int8.speedup[slowest]!,
        firstQuestionSpeedup: inputs.int8.speedup['first.wall'] ?? null,
        top1Agreement: inputs.int8.agreement?.top1SameShare ?? null,
        captionAgreement: inputs.int8.agreement?.captionIdenticalShare ?? null,
        vnni: inputs.machine.vnni,
        ...(inputs.machine.featuresUnknown ? { vnniUnknown: inputs.machine.featuresUnknown } : {}),
      };
    }
  }

  const memory = inputs.memory
    ? {
        weightMiB: inputs.memory.weightMiB,
        rssAfterLoadMiB: inputs.memory.rssAfterLoadMiB,
        ratio: inputs.memory.rssAfterLoadRatio,
        rssAfterQuestionMiB: inputs.memory.rssAfterQuestionMiB,
        ratioAfterQuestion: inputs.memory.rssAfterQuestionRatio,
        ...(inputs.memory.rssAfterLoadSplitMiB ? { rssAfterLoadSplitMiB: inputs.memory.rssAfterLoadSplitMiB } : {}),
      }
    : null;

  const skipped = { ...inputs.skipped };
  const targets = evaluateTargets({
    fullSize: inputs.fullSize,
    skipped,
    firstQuestion: bound?.firstQuestion,
    followUp: bound ? { ...bound.followUp, workRatio: bound.followUpWork.ratio, cachedGflop: significant(flopCounts!.fusionImage.gflop) } : undefined,
    pytorch: slowestPytorch,
    memory: memory ? { ratio: memory.ratio, rssMiB: memory.rssAfterLoadMiB, weightMiB: memory.weightMiB } : undefined,
    coldStart: inputs.coldStart ? { askMs: inputs.coldStart.askMs } : undefined,
    int8: int8 ? { speedup: int8.slowestGraphSpeedup, graph: int8.slowestGraph, vnni: int8.vnni, vnniUnknown: int8.vnniUnknown, top1Agreement: int8.top1Agreement, captionAgreement: int8.captionAgreement } : undefined,
  });

  const flops = flopCounts
    ? {
        ...Object.fromEntries(Object.entries(flopCounts).map(([stage, estimate]) => [stage, significant(estimate.gflop)])),
        questionTokens: inputs.questionTokens,
        followUpTokens: inputs.followUpTokens,
        captionSteps: inputs.captionSteps,
      }
    : null;
  return {
    modelSet: inputs.modelSet,
    fullSize: inputs.fullSize,
    machine: inputs.machine,
    ceiling: inputs.ceiling,
    flops,
    stages,
    firstQuestionStages: flopCounts ? stageComputes(inputs.firstQuestion.stages, flopCounts, ceilingAll) : {},
    bound,
    pytorch,
    int8,
    coldStart: inputs.coldStart,
    memory,
    skipped,
    targets,
  };
}

/**
 * AVX-512 and VNNI from the text of /proc/cpuinfo (undefined: the file could not be read). Only x86 lists `flags`;
 * ARM lists `Features`, which name neither, so both are unknown there, with the reason.
 *
 * @example
 * cpuFeatures('flags\t: fpu avx512f avx512_vnni\n'); // { avx512: true, vnni: true }
 */
export function cpuFeatures(cpuinfo: string | undefined): Pick<MachineInfo, 'avx512' | 'vnni' | 'featuresUnknown'> {
  if (cpuinfo === undefined) return { avx512: null, vnni: null, featuresUnknown: 'no /proc/cpuinfo' };
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.split(/\s+/);
  if (!flags) return { avx512: null, vnni: null, featuresUnknown: '/proc/cpuinfo lists no x86 flags (not an x86 CPU?)' };
  return { avx512: flags.includes('avx512f'), vnni: flags.includes('avx512_vnni') || flags.includes('avx_vnni') };
}

/** This machine: CPU, cores, AVX-512 and VNNI (from /proc/cpuinfo), node and onnxruntime versions. */
export function machineInfo(onnxruntimeVersion: string): MachineInfo {
  let cpuinfo: string | undefined;
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuinfo = undefined;
  }
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: availableParallelism(),
    ...cpuFeatures(cpuinfo),
    node: process.version,
    onnxruntime: onnxruntimeVersion,
  };
}

const yes = (value: boolean | null): string => (value === null ? 'unknown' : value ? 'yes' : 'no');

/** Prints the proof as tables, the targets last. */
export function printProof(proof: Proof): void {
  const { machine } = proof;
  console.log(`\n## The proof (issue 14): ${proof.modelSet}`);
  console.log(`${machine.cpu}, ${machine.cores} cores, AVX-512 ${yes(machine.avx512)}, VNNI ${yes(machine.vnni)}, node ${machine.node}, onnxruntime ${machine.onnxruntime}`);
  console.log('onnxruntime MatMul ceiling, GFLOP/s (median over shapes of each shape\'s median over rounds; best single run):');
  console.table(Object.fromEntries(Object.entries(proof.ceiling).map(([threads, ceiling]) => [`${threads} thread(s)`, { median: ceiling.median, best: ceiling.best, bestShape: ceiling.bestShape, rounds: ceiling.rounds }])));
  if (proof.flops) {
    console.log(`GFLOP per stage (question of ${proof.flops.questionTokens} tokens, follow-up of ${proof.flops.followUpTokens}, caption of ${proof.flops.captionSteps} greedy steps):`);
    console.table(proof.flops);
  } else console.log(`GFLOP not counted: ${proof.skipped.firstQuestion ?? 'no FLOP counts'}`);
  for (const [threads, stages] of Object.entries(proof.stages)) {
    console.log(`each graph alone on ${threads} thread(s): ms, GFLOP/s and share of the ${threads}-thread ceiling:`);
    console.table(stages);
  }
  if (Object.keys(proof.firstQuestionStages).length > 0) {
    console.log(`first question as the library runs it (caption and candidates asked at once, ${proof.bound?.allCoresThreads ?? proof.machine.cores} cores):`);
    console.table(proof.firstQuestionStages);
  }
  if (proof.bound) {
    console.log(`against the all-cores bound (GFLOP / ${proof.bound.ceilingGflops} GFLOP/s):`);
    console.table({ firstQuestion: proof.bound.firstQuestion, followUp: proof.bound.followUp, 'followUp (work done)': proof.bound.followUpWork });
  }
  if (proof.pytorch && 'skipped' in proof.pytorch) console.log(`PyTorch eager baseline: skipped (${proof.pytorch.skipped})`);
  else if (proof.pytorch) {
    console.log(`ONNX ms / PyTorch eager ms (torch ${proof.pytorch.torch}), per stage and thread count (below 1: onnxruntime is faster):`);
    console.table(proof.pytorch.onnxOverPytorch);
  }
  if (proof.int8) {
    console.log(`int8 against fp32: slowest graph ${proof.int8.slowestGraph} ${proof.int8.slowestGraphSpeedup}x, first question ${proof.int8.firstQuestionSpeedup ?? '-'}x; agreement: top-1 ${proof.int8.top1Agreement ?? '-'}, greedy captions ${proof.int8.captionAgreement ?? '-'}`);
  }
  if (proof.coldStart) {
    const cold = proof.coldStart;
    console.log(`cold start (median of ${cold.runs}): ask ${cold.askMs} ms, import alone ${cold.importMs} ms (a process that only imports: ${cold.importProcessMs} ms; node -e 0: ${cold.nodeStartMs} ms)`);
  }
  if (proof.memory) {
    const split = proof.memory.rssAfterLoadSplitMiB;
    const parts = split ? `; ${split.anonymous} MiB anonymous, ${split.file} MiB mapped from files` : '';
    console.log(`RSS after load ${proof.memory.rssAfterLoadMiB} MiB = ${proof.memory.ratio}x the ${proof.memory.weightMiB} MiB of graphs (after a question: ${proof.memory.ratioAfterQuestion}x)${parts}`);
  }
  console.log('\ntargets:');
  console.table(proof.targets.map((row) => ({ target: row.target, measured: row.display, met: row.met === null ? '-' : row.met ? 'met' : 'NOT met', note: row.note ?? '' })));
}
