// onnxruntime's own MatMul throughput on this machine: the ceiling the models' stages are measured against.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { OnnxGraph, floatTensor } from '../src/runtime/onnx-session.js';
import { packageRoot } from '../src/paths.js';
import { median, round } from './stats.js';

/** [m, k, n]: A is m x k, B is k x n. */
export type MatmulShape = readonly [number, number, number];

/**
 * The GEMM shapes the models run (ViT MLP and QKV at 577 and 1297 tokens) and a square one. A single square
 * product understates the ceiling on AVX-512 machines by half, which would make the models look faster than it.
 */
export const CEILING_SHAPES: readonly MatmulShape[] = [
  [577, 768, 3072],
  [1297, 768, 3072],
  [1297, 3072, 768],
  [1297, 768, 2304],
  [2048, 2048, 2048],
];

export interface MatmulCeiling {
  threads: number;
  rounds: number;
  /** GFLOP/s: the median over shapes of each shape's median over rounds. What bounds and shares use. */
  median: number;
  /** GFLOP/s: the fastest single run of any shape (what 0.1's bench quoted). */
  best: number;
  bestShape: string;
  /** Each shape's median and best GFLOP/s, keyed `m x k x n`. */
  shapes: Record<string, { median: number; best: number }>;
}

/**
 * Measures MatMul GFLOP/s with `threads` intra-op threads: every shape once per round, rounds interleaved so that a
 * change in a shared machine's load falls on every shape alike, after one unmeasured run per shape.
 *
 * @example
 * const { median, best } = await measureMatmulCeiling({ threads: 1, rounds: 5 });
 */
export async function measureMatmulCeiling(options: { threads: number; rounds?: number; shapes?: readonly MatmulShape[] }): Promise<MatmulCeiling> {
  const rounds = options.rounds ?? 5;
  const shapes = options.shapes ?? CEILING_SHAPES;
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`rounds must be a positive integer, got ${rounds}`);
  // Same session settings as the models' graphs (no spinning, no arena), so the ceiling is the one they can reach.
  const graph = await OnnxGraph.create(
    join(packageRoot(), 'bench', 'matmul.onnx'),
    {
      name: 'matmul',
      inputs: [
        { name: 'A', dtype: 'float32', shape: ['m', 'k'] },
        { name: 'B', dtype: 'float32', shape: ['k', 'n'] },
      ],
      outputs: [{ name: 'Y', dtype: 'float32', shape: ['m', 'n'] }],
    },
    { intraOpNumThreads: options.threads },
  );
  try {
    const inputs = shapes.map(([m, k, n]) => ({
      key: `${m}x${k}x${n}`,
      flop: 2 * m * k * n,
      feeds: {
        A: floatTensor(Float32Array.from({ length: m * k }, (_, index) => ((index * 7) % 13) / 13), [m, k]),
        B: floatTensor(Float32Array.from({ length: k * n }, (_, index) => ((index * 5) % 11) / 11), [k, n]),
      },
    }));
    for (const input of inputs) await graph.run(input.feeds);
    const samples = new Map<string, number[]>(inputs.map((input) => [input.key, []]));
    for (let roundIndex = 0; roundIndex < rounds; roundIndex += 1) {
      for (const input of inputs) {
        const started = performance.now();
        await graph.run(input.feeds);
        samples.get(input.key)!.push(input.flop / ((performance.now() - started) / 1000) / 1e9);
      }
    }
    return summarizeCeiling(options.threads, rounds, samples);
  } finally {
    await graph.dispose();
  }
}

/** The ceiling's figures from GFLOP/s samples per shape (exported for tests). */
export function summarizeCeiling(threads: number, rounds: number, samples: Map<string, number[]>): MatmulCeiling {
  const shapes: MatmulCeiling['shapes'] = {};
  let best = 0;
  let bestShape = '';
  for (const [key, values] of samples) {
    const fastest = Math.max(...values);
    shapes[key] = { median: round(median(values)), best: round(fastest) };
    if (fastest > best) [best, bestShape] = [fastest, key];
  }
  return { threads, rounds, median: round(median([...samples.values()].map((values) => median(values)))), best: round(best), bestShape, shapes };
}
