// Runs inference tasks. Loaded inside worker threads (inference-worker.ts) or, with `workers: 0`, in-process.
import { performance } from 'node:perf_hooks';
import { beamSearch } from '../generation/beam-search.js';
import { greedySearch } from '../generation/greedy-search.js';
import { InferenceError } from '../errors/inference-error.js';
import { preprocessImage } from '../image/preprocess.js';
import { BlipStepDecoder, expandRows } from './blip-step-decoder.js';
import type { FusionParts } from './fusion-parts.js';
import { int64Tensor, OnnxGraph, type TensorData } from './onnx-session.js';
import type {
  CaptionTask,
  CaptionTaskResult,
  GraphFile,
  LoadTaskResult,
  VqaTask,
  VqaTaskResult,
  WorkerModelSpec,
  WorkerTask,
} from './worker-protocol.js';

type LoadedGraphs = Record<string, OnnxGraph>;

/** A model's sessions in this thread; VLE's fusion graph may be open as its two parts instead (fusion-parts.ts). */
interface LoadedModel {
  graphs: LoadedGraphs;
  fusionParts?: FusionParts;
  /** Why the fusion graph runs whole (VLE only). */
  fusionWhole?: string;
}

// One entry per model: the graphs of a model are created once per thread and reused by every task.
const loaded = new Map<string, Promise<LoadedModel>>();

async function modelFor(model: WorkerModelSpec): Promise<LoadedModel> {
  let found = loaded.get(model.key);
  if (!found) {
    found = openModel(model);
    loaded.set(model.key, found);
    found.catch(() => loaded.delete(model.key));
  }
  return found;
}

async function openModel(model: WorkerModelSpec): Promise<LoadedModel> {
  const opened: LoadedModel = { graphs: {} };
  // Every graph opens at once; on a failure, wait for the others and release what did open.
  const results = await Promise.allSettled(
    Object.entries(model.graphs).map(async ([name, file]) => {
      if (model.kind === 'vle-vqa' && name === 'fusion') {
        const parts = await openFusionParts(name, file, model);
        if (!('whole' in parts)) {
          opened.fusionParts = parts;
          return;
        }
        opened.fusionWhole = parts.whole;
      }
      opened.graphs[name] = await OnnxGraph.create(file.path, { name, ...file }, model.session);
    }),
  );
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) {
    await disposeModel(opened).catch(() => undefined);
    throw failed.reason;
  }
  return opened;
}

/** VLE's fusion graph as its two parts, or why it runs whole. */
async function openFusionParts(name: string, file: GraphFile, model: WorkerModelSpec): Promise<FusionParts | { whole: string }> {
  const cacheBytes = model.fusionCacheBytes ?? 0;
  if (cacheBytes <= 0) return { whole: 'fusionCacheBytes is 0' };
  // Loaded only here (it brings onnx-proto and lru-cache), the worker's one dynamic import (nodejs/node#52187).
  const { FusionParts } = await import('./fusion-parts.js');
  return FusionParts.open(name, file, model.session, cacheBytes);
}

/** Releases every session of a model; a release that fails does not stop the others (nor hide a load's error). */
async function disposeModel(model: LoadedModel): Promise<void> {
  const released = await Promise.allSettled([...Object.values(model.graphs).map((graph) => graph.dispose()), model.fusionParts?.dispose()]);
  const failed = released.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
}

function cancelled(flag?: SharedArrayBuffer): boolean {
  return flag !== undefined && Atomics.load(new Int32Array(flag), 0) === 1;
}

function graph(graphs: LoadedGraphs, name: string): OnnxGraph {
  const found = graphs[name];
  if (!found) throw new InferenceError('session_failed', `The model has no "${name}" graph.`);
  return found;
}

/** Image embeddings from the cache, or from the vision graph run on given or freshly preprocessed pixels. */
async function imageEmbeddings(
  task: CaptionTask | VqaTask,
  encoder: OnnxGraph,
): Promise<{ imageEmbeds: TensorData; computed?: TensorData; preprocess?: number; vision?: number }> {
  if (task.imageEmbeds) return { imageEmbeds: task.imageEmbeds };
  let pixelValues = task.pixelValues;
  let preprocess: number | undefined;
  if (!pixelValues) {
    if (!task.image) throw new InferenceError('bad_output', `A ${task.type} task needs an image, pixel values or image embeddings.`);
    const started = performance.now();
    const pixels = await preprocessImage(task.image, task.model.preprocessor);
    pixelValues = { type: 'float32', data: pixels.data, dims: [...pixels.dims] };
    preprocess = performance.now() - started;
  }
  const started = performance.now();
  const computed = (await encoder.run({ pixel_values: pixelValues })).image_embeds!;
  return { imageEmbeds: computed, computed, preprocess, vision: performance.now() - started };
}

async function runCaption(task: CaptionTask): Promise<CaptionTaskResult> {
  const { graphs } = await modelFor(task.model);
  const { imageEmbeds, computed, preprocess, vision } = await imageEmbeddings(task, graph(graphs, 'visionEncoder'));
  if (cancelled(task.cancel)) return { tokenIds: [], imageEmbeds: computed, cancelled: true, timings: { preprocess, vision, crossAttention: 0, decoder: 0, steps: 0 } };

  const crossStarted = performance.now();
  const cross = await graph(graphs, 'crossAttentionCache').run({ image_embeds: imageEmbeds });
  const crossAttention = performance.now() - crossStarted;
  const layers = Object.keys(cross).filter((name) => name.startsWith('cross_key.')).length;
  const rows = Math.max(1, task.search.numBeams);
  const decoder = new BlipStepDecoder(graph(graphs, 'textDecoder'), expandRows(cross, rows), layers);

  const decodeStarted = performance.now();
  const search = { ...task.search, isCancelled: () => cancelled(task.cancel) };
  const result = rows > 1 ? await beamSearch(decoder, search) : await greedySearch(decoder, search);
  return {
    tokenIds: result.tokenIds,
    imageEmbeds: computed,
    cancelled: cancelled(task.cancel),
    timings: { preprocess, vision, crossAttention, decoder: performance.now() - decodeStarted, steps: result.steps },
  };
}

async function runVqa(task: VqaTask): Promise<VqaTaskResult> {
  const { graphs, fusionParts } = await modelFor(task.model);
  // A worker that holds this image's fusion state needs neither the image encoder nor the image part again.
  const cachedState = fusionParts?.cached(task.imageKey);
  const image = cachedState ? undefined : await imageEmbeddings(task, graph(graphs, 'imageEncoder'));
  const { computed, preprocess, vision } = image ?? {};
  if (cancelled(task.cancel)) return { logits: new Float32Array(0), imageEmbeds: computed, cancelled: true, timings: { preprocess, vision, fusion: 0 } };
  const started = performance.now();
  const length = task.inputIds.length;
  const question = {
    input_ids: int64Tensor(task.inputIds, [1, length]),
    attention_mask: int64Tensor(task.attentionMask, [1, length]),
  };
  if (fusionParts) {
    const fresh = cachedState ? undefined : await fusionParts.imageState(image!.imageEmbeds, task.imageKey);
    const logits = await fusionParts.logits(question, cachedState ?? fresh!.state);
    return {
      logits,
      imageEmbeds: computed,
      imageStateCached: cachedState !== undefined,
      cancelled: false,
      timings: { preprocess, vision, fusion: performance.now() - started, ...(fresh ? { fusionImage: fresh.ms } : {}) },
    };
  }
  const outputs = await graph(graphs, 'fusion').run({ ...question, image_embeds: image!.imageEmbeds });
  return { logits: outputs.logits!.data as Float32Array, imageEmbeds: computed, imageStateCached: false, cancelled: false, timings: { preprocess, vision, fusion: performance.now() - started } };
}

/** Dispatches one task. The same function serves worker threads and the in-process executor. */
export async function handleTask(task: WorkerTask): Promise<CaptionTaskResult | VqaTaskResult | LoadTaskResult> {
  switch (task.type) {
    case 'caption':
      return runCaption(task);
    case 'vqa':
      return runVqa(task);
    case 'load': {
      const { graphs, fusionParts, fusionWhole } = await modelFor(task.model);
      return {
        graphs: Object.fromEntries(
          Object.entries(graphs).map(([name, loadedGraph]) => [name, { inputNames: [...loadedGraph.inputNames], outputNames: [...loadedGraph.outputNames] }]),
        ),
        ...(fusionParts ? { fusionSplit: { handoff: [...fusionParts.handoff] } } : {}),
        ...(fusionWhole === undefined ? {} : { fusionWhole }),
      };
    }
    default:
      throw new InferenceError('worker_failed', `Unknown task type ${(task as { type: string }).type}.`);
  }
}

/** Releases the sessions this thread holds for the given models. */
export async function releaseModels(keys: string[]): Promise<void> {
  const all = keys.flatMap((key) => {
    const graphs = loaded.get(key);
    loaded.delete(key);
    return graphs ? [graphs] : [];
  });
  for (const graphs of all) {
    const settled = await graphs.catch(() => undefined);
    if (settled) await disposeModel(settled);
  }
}
