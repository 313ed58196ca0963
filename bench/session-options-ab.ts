// Two sessions of one full-size stand-in graph, onnxruntime's defaults (A) against other settings (B), run in turn
// in one process so both see the same machine; prints process CPU time and wall time per run, the B/A CPU ratio of
// each round, and whether the outputs are identical:
//   node dist/bench/session-options-ab.js visionEncoder|textDecoder '{"enableCpuMemArena":false}' [--threads 1]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { packageRoot } from '../src/paths.js';
import { BlipStepDecoder } from '../src/runtime/blip-step-decoder.js';
import { OnnxGraph, type GraphSessionOptions, type TensorData } from '../src/runtime/onnx-session.js';
import { median } from './stats.js';

// onnxruntime's own defaults, which 0.1 used.
const ONNXRUNTIME_DEFAULTS: GraphSessionOptions = { enableCpuMemArena: true, initializersInArena: true, prepackWeights: true, enableMemPattern: true };

const { values, positionals } = parseArgs({ allowPositionals: true, options: { threads: { type: 'string', default: '1' }, rounds: { type: 'string', default: '3' } } });
const [graphName = 'visionEncoder', variantJson = '{}'] = positionals;
const folder = join(packageRoot(), 'models', 'full-size', 'blip-base-standin');
const manifest = JSON.parse(readFileSync(join(folder, 'vqa-llm.json'), 'utf8')) as { graphs: Record<string, { file: string; inputs: []; outputs: [] }> };
const threads = Number(values.threads);
const open = (name: string, options: GraphSessionOptions): Promise<OnnxGraph> =>
  OnnxGraph.create(join(folder, manifest.graphs[name]!.file), { name, ...manifest.graphs[name]! }, { ...options, intraOpNumThreads: threads });
const cpuMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

const variants = { A: ONNXRUNTIME_DEFAULTS, B: { ...ONNXRUNTIME_DEFAULTS, ...(JSON.parse(variantJson) as GraphSessionOptions) } };
const samples: Record<'A' | 'B', { cpu: number; wall: number }[]> = { A: [], B: [] };
const outputs: Record<string, Float32Array | number[]> = {};

async function once(graph: OnnxGraph, cross?: Record<string, TensorData>): Promise<Float32Array | number[]> {
  if (!cross) {
    const pixels = Float32Array.from({ length: 3 * 384 * 384 }, (_, index) => Math.sin(index));
    return (await graph.run({ pixel_values: { type: 'float32', data: pixels, dims: [1, 3, 384, 384] } })).image_embeds!.data as Float32Array;
  }
  // 12 greedy steps of the caption decoder.
  const decoder = new BlipStepDecoder(graph, cross, 12);
  const ids: number[] = [];
  let token = 30522;
  for (let step = 0; step < 12; step += 1) {
    const [logits] = await decoder.step([[token]]);
    token = logits!.reduce((best, value, index, all) => (value > all[best]! ? index : best), 0);
    ids.push(token);
  }
  return ids;
}

let cross: Record<string, TensorData> | undefined;
if (graphName === 'textDecoder') {
  const crossGraph = await open('crossAttentionCache', ONNXRUNTIME_DEFAULTS);
  const embeds = Float32Array.from({ length: 577 * 768 }, (_, index) => Math.sin(index) * 0.5);
  cross = await crossGraph.run({ image_embeds: { type: 'float32', data: embeds, dims: [1, 577, 768] } });
}
const graphs = { A: await open(graphName, variants.A), B: await open(graphName, variants.B) };
for (let round = 0; round <= Number(values.rounds); round += 1) {
  for (const key of ['A', 'B'] as const) {
    const cpuStarted = cpuMs();
    const started = performance.now();
    outputs[key] = await once(graphs[key], cross);
    // Round 0 warms both sessions up.
    if (round > 0) samples[key].push({ cpu: cpuMs() - cpuStarted, wall: performance.now() - started });
  }
}
const [a, b] = [outputs.A!, outputs.B!];
let maxDifference = 0;
for (let index = 0; index < a.length; index += 1) maxDifference = Math.max(maxDifference, Math.abs(Number(a[index]) - Number(b[index])));
console.log(`${graphName}, ${threads} thread(s); B = ${JSON.stringify(JSON.parse(variantJson))}`);
for (const key of ['A', 'B'] as const) {
  console.log(`${key}: CPU ${Math.round(median(samples[key].map((sample) => sample.cpu)))} ms, wall ${Math.round(median(samples[key].map((sample) => sample.wall)))} ms per run (medians)`);
}
console.log(`B/A CPU per round: ${samples.B.map((sample, index) => (sample.cpu / samples.A[index]!.cpu).toFixed(2)).join(' ')}`);
console.log(`outputs ${maxDifference === 0 ? 'identical' : `differ by up to ${maxDifference}`}`);
