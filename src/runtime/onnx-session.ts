// The only module that imports onnxruntime-node. Everything else passes plain typed arrays.
import * as ort from 'onnxruntime-node';
import { GraphMismatchError } from '../errors/graph-mismatch-error.js';
import { InferenceError } from '../errors/inference-error.js';

export type TensorDataType = 'float32' | 'int64';

/** A tensor as plain data: what crosses thread boundaries and what graphs take and return. */
export interface TensorData {
  type: TensorDataType;
  data: Float32Array | BigInt64Array;
  dims: number[];
}

export interface TensorSpecLike {
  name: string;
  dtype: string;
  shape: (number | string)[];
}

export interface GraphSessionOptions {
  /** Threads one inference may use (the calling thread included). Default 1. */
  intraOpNumThreads?: number;
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Let onnxruntime's pool threads spin while they wait for work. Default false: spinning threads of one session
   * take the cores that another session's threads are computing on, so two models running side by side slow each
   * other down far more than the cores they share explains; without it a waiting thread sleeps.
   */
  allowSpinning?: boolean;
  /**
   * onnxruntime's CPU memory arena. Default false: the arena keeps the peak of every graph's activations for the
   * life of the session (~350 MiB for the base models after one question), and on these graphs a run is no slower
   * without it (measured in docs/performance.md).
   */
  enableCpuMemArena?: boolean;
  /** onnxruntime's memory pattern planning. Default true. */
  enableMemPattern?: boolean;
  /**
   * Allocate the weights through the memory arena (when it is on). Default false: the arena rounds its regions
   * up, which costs ~90 MiB of RSS on the base models for nothing.
   */
  initializersInArena?: boolean;
  /**
   * Keep a pre-packed copy of constant MatMul weights. Default true: without it RSS after load drops from 1.35x to
   * 1.2x the weight bytes, but every graph runs 7-16% slower and results move in the 6th digit.
   */
  prepackWeights?: boolean;
}

/**
 * One ONNX graph with its session: created once, reused for every call, checked against the manifest.
 *
 * @example
 * const graph = await OnnxGraph.create('tiny-vle/onnx/fusion.onnx', { name: 'fusion', inputs, outputs });
 * const { logits } = await graph.run({ input_ids, attention_mask, image_embeds });
 */
export class OnnxGraph {
  private constructor(
    readonly name: string,
    private readonly session: ort.InferenceSession,
  ) {}

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  static async create(
    path: string,
    spec: { name: string; inputs: TensorSpecLike[]; outputs: TensorSpecLike[] },
    options: GraphSessionOptions = {},
  ): Promise<OnnxGraph> {
    const session = await openSession(spec.name, path, path, ortSessionOptions(options));
    checkNames(spec.name, path, 'input', spec.inputs.map((input) => input.name), session.inputNames);
    checkNames(spec.name, path, 'output', spec.outputs.map((output) => output.name), session.outputNames);
    return new OnnxGraph(spec.name, session);
  }

  /**
   * A graph from encoded ModelProto bytes (a part of a model folder's graph, see fusion-split.ts). External
   * initializers are read relative to `externalDataFolder`, as for a graph file in that folder. `source` names it in
   * errors.
   */
  static async fromBytes(name: string, bytes: Uint8Array, source: string, externalDataFolder: string, options: GraphSessionOptions = {}): Promise<OnnxGraph> {
    const sessionOptions = ortSessionOptions(options, { model_external_initializers_file_folder_path: externalDataFolder });
    return new OnnxGraph(name, await openSession(name, source, bytes, sessionOptions));
  }

  /** Element type and shape of each output, as onnxruntime inferred them. */
  get outputTypes(): Record<string, { type: string; shape?: readonly (number | string)[] }> {
    const types: Record<string, { type: string; shape?: readonly (number | string)[] }> = {};
    for (const meta of this.session.outputMetadata) {
      types[meta.name] = meta.isTensor ? { type: meta.type, shape: meta.shape } : { type: 'non-tensor' };
    }
    return types;
  }

  /** Runs the graph. Every input the session declares must be given; outputs come back as plain data. */
  async run(feeds: Record<string, TensorData>, outputNames?: string[]): Promise<Record<string, TensorData>> {
    const missing = this.session.inputNames.filter((name) => !(name in feeds));
    if (missing.length > 0) {
      throw new GraphMismatchError('missing_input', `Graph "${this.name}" needs input(s) ${missing.join(', ')}, which the caller did not give.`);
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const tensor = feeds[name]!;
      ortFeeds[name] = new ort.Tensor(tensor.type, tensor.data, tensor.dims);
    }
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      results = outputNames ? await this.session.run(ortFeeds, outputNames) : await this.session.run(ortFeeds);
    } catch (error) {
      throw new InferenceError('session_failed', `Graph "${this.name}" failed: ${(error as Error).message}`, { cause: error });
    }
    const outputs: Record<string, TensorData> = {};
    for (const [name, value] of Object.entries(results)) {
      const tensor = value as ort.Tensor;
      if (tensor.type !== 'float32' && tensor.type !== 'int64') {
        throw new InferenceError('bad_output', `Graph "${this.name}" returned ${name} as ${tensor.type}; expected float32 or int64.`);
      }
      outputs[name] = { type: tensor.type, data: tensor.data as Float32Array | BigInt64Array, dims: [...tensor.dims] };
    }
    return outputs;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function ortSessionOptions(options: GraphSessionOptions, extraSession: Record<string, string> = {}): ort.InferenceSession.SessionOptions {
  return {
    intraOpNumThreads: options.intraOpNumThreads ?? 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: options.graphOptimizationLevel ?? 'all',
    executionMode: 'sequential',
    logSeverityLevel: 3,
    enableCpuMemArena: options.enableCpuMemArena ?? false,
    enableMemPattern: options.enableMemPattern ?? true,
    extra: {
      session: {
        intra_op: { allow_spinning: options.allowSpinning ? '1' : '0' },
        use_device_allocator_for_initializers: options.initializersInArena ? '0' : '1',
        disable_prepacking: options.prepackWeights === false ? '1' : '0',
        ...extraSession,
      },
    },
  };
}

async function openSession(name: string, source: string, model: string | Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  try {
    return typeof model === 'string' ? await ort.InferenceSession.create(model, options) : await ort.InferenceSession.create(model, options);
  } catch (error) {
    throw new InferenceError('session_failed', `onnxruntime could not load graph "${name}" from ${source}: ${(error as Error).message}.`, {
      hint: 'Re-export the model folder, or check it with `vqa-llm models verify`.',
      cause: error,
    });
  }
}

function checkNames(graph: string, path: string, what: 'input' | 'output', expected: string[], actual: readonly string[]): void {
  const missing = expected.filter((name) => !actual.includes(name));
  const unexpected = actual.filter((name) => !expected.includes(name));
  if (missing.length === 0 && unexpected.length === 0) return;
  const parts = [];
  if (missing.length > 0) parts.push(`the manifest lists ${what}(s) ${missing.join(', ')} that the graph lacks`);
  if (unexpected.length > 0) parts.push(`the graph has ${what}(s) ${unexpected.join(', ')} that the manifest does not list`);
  const reason = missing.length > 0 ? (what === 'input' ? 'missing_input' : 'missing_output') : 'unexpected_input';
  throw new GraphMismatchError(reason, `Graph "${graph}" (${path}) does not match vqa-llm.json: ${parts.join('; ')}.`, {
    hint: 'The folder mixes files from different exports: export it again with `vqa-llm models export`.',
  });
}

/** Makes a float32 tensor. */
export function floatTensor(data: Float32Array, dims: number[]): TensorData {
  return { type: 'float32', data, dims };
}

/** Makes an int64 tensor from JavaScript numbers. */
export function int64Tensor(values: ArrayLike<number>, dims: number[]): TensorData {
  const data = new BigInt64Array(values.length);
  for (let index = 0; index < values.length; index += 1) data[index] = BigInt(values[index]!);
  return { type: 'int64', data, dims };
}
