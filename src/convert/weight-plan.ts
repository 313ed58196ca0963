// Where each checkpoint tensor goes: which key feeds which initializer, its shape once variables are substituted,
// and its offset in the graph's data file. Everything is checked here, before a byte is written.
import { ConversionError } from '../errors/conversion-error.js';
import type { Checkpoint, TensorInfo } from '../checkpoints/index.js';
import { configValue } from './config-path.js';
import type { ConfigDim, ModelTemplate, TemplateGraph, TemplateTensor, TemplateTensorSpec } from './template-types.js';

/** Offsets in a data file are multiples of this (what the contract and onnxruntime's loaders like). */
export const DATA_ALIGNMENT = 64;

/** What the Python loaders drop when a template does not say (`ignoredKeySuffixes`): buffers computed in __init__. */
export const DEFAULT_IGNORED_KEY_SUFFIXES = ['position_ids'];

/** A checkpoint key the Python loaders drop without a word. */
export function isDroppedKey(template: ModelTemplate, key: string): boolean {
  return (template.ignoredKeySuffixes ?? DEFAULT_IGNORED_KEY_SUFFIXES).some((suffix) => key.endsWith(suffix));
}

export interface PlannedTensor {
  tensor: TemplateTensor;
  /** The checkpoint key read. */
  key: string;
  info: TensorInfo;
  /** Shape in the checkpoint. */
  sourceShape: number[];
  /** Shape of the initializer in the graph (sourceShape, reversed by `transpose`). */
  dims: number[];
  offset: number;
  length: number;
}

export interface GraphPlan {
  graphName: string;
  graph: TemplateGraph;
  /** The data file's name beside the graph: `<file>.data`. */
  dataFile: string;
  tensors: PlannedTensor[];
  /** The data file's size. */
  bytes: number;
  inputs: Array<{ name: string; dtype: string; shape: Array<number | string> }>;
  outputs: Array<{ name: string; dtype: string; shape: Array<number | string> }>;
}

export interface WeightPlan {
  graphs: GraphPlan[];
  /** Bytes of tensor data over all graphs (padding excluded): what progress counts. */
  tensorBytes: number;
}

const isConfigDim = (dim: unknown): dim is ConfigDim => typeof dim === 'object' && dim !== null && 'config' in dim;

/** The size a variable has in the checkpoint's completed config. */
function variableSize(config: Record<string, unknown>, dim: ConfigDim, configFile: string): number {
  const value = configValue(config, dim.config);
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new ConversionError('bad_config', `${configFile}: ${dim.config} is ${JSON.stringify(value)}, not a size.`, { file: configFile, path: dim.config });
  }
  return value as number;
}

const alignUp = (value: number) => Math.ceil(value / DATA_ALIGNMENT) * DATA_ALIGNMENT;
const BYTES_PER_ELEMENT = { float32: 4, int64: 8 } as const;
const FLOATING = new Set(['float32', 'float16', 'bfloat16', 'float64']);
const INTEGER = new Set(['int64', 'int32', 'int16', 'int8', 'uint8']);

function resolveSpec(spec: TemplateTensorSpec, config: Record<string, unknown>, configFile: string) {
  return { name: spec.name, dtype: spec.dtype, shape: spec.shape.map((dim) => (isConfigDim(dim) ? variableSize(config, dim, configFile) : dim)) };
}

export interface PlanWeightsOptions {
  template: ModelTemplate;
  checkpoint: Checkpoint;
  config: Record<string, unknown>;
  configFile: string;
}

/**
 * Resolves every template tensor against the checkpoint.
 *
 * @throws ConversionError `missing_key` (no source key present), `unexpected_key` (a checkpoint key no graph reads and
 * the Python loaders do not drop), `shape_mismatch`, `dtype_mismatch`; each names the key and the file.
 */
export function planWeights({ template, checkpoint, config, configFile }: PlanWeightsOptions): WeightPlan {
  const known = new Set<string>();
  for (const graph of Object.values(template.graphs)) for (const tensor of graph.tensors) for (const source of tensor.sources) known.add(source);
  const unexpected = checkpoint.keys.filter((key) => !known.has(key) && !isDroppedKey(template, key));
  if (unexpected.length > 0) {
    const file = checkpoint.info(unexpected[0]!).file;
    const shown = unexpected.slice(0, 5).map((key) => JSON.stringify(key)).join(', ') + (unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : '');
    throw new ConversionError('unexpected_key', `${file} holds tensor(s) no graph of template ${template.id} uses: ${shown}.`, {
      key: unexpected[0],
      file,
      hint: 'The checkpoint is not the architecture the template was made for; export it with the Python exporter instead.',
    });
  }

  let tensorBytes = 0;
  const graphs = Object.entries(template.graphs).map(([graphName, graph]): GraphPlan => {
    let offset = 0;
    const tensors = graph.tensors.map((tensor): PlannedTensor => {
      const key = tensor.sources.find((source) => checkpoint.has(source));
      if (key === undefined) {
        const aliases = tensor.sources.length > 1 ? ` (nor ${tensor.sources.slice(1).map((source) => JSON.stringify(source)).join(', ')})` : '';
        throw new ConversionError(
          'missing_key',
          `The checkpoint ${checkpoint.files.join(', ')} has no tensor ${JSON.stringify(tensor.sources[0])}${aliases}, which graph ${graphName} needs.`,
          { key: tensor.sources[0], file: checkpoint.files[0] ?? checkpoint.path },
        );
      }
      const info = checkpoint.info(key);
      const sourceShape = tensor.shape.map((size, axis) => {
        const dim = tensor.dims?.[axis];
        return dim ? variableSize(config, dim, configFile) : size;
      });
      const sameShape = info.shape.length === sourceShape.length && info.shape.every((size, axis) => size === sourceShape[axis]);
      if (!sameShape) {
        throw new ConversionError(
          'shape_mismatch',
          `${info.file}: tensor ${JSON.stringify(key)} has shape ${JSON.stringify(info.shape)} where graph ${graphName} of template ${template.id} needs ${JSON.stringify(sourceShape)}.`,
          { key, file: info.file },
        );
      }
      const fits = tensor.dtype === 'float32' ? FLOATING.has(info.sourceDtype) : INTEGER.has(info.sourceDtype);
      if (!fits) {
        throw new ConversionError('dtype_mismatch', `${info.file}: tensor ${JSON.stringify(key)} is ${info.sourceDtype}; graph ${graphName} needs ${tensor.dtype}.`, {
          key,
          file: info.file,
        });
      }
      const dims = tensor.transform === 'transpose' ? [...sourceShape].reverse() : sourceShape;
      const length = sourceShape.reduce((product, size) => product * size, 1) * BYTES_PER_ELEMENT[tensor.dtype];
      offset = alignUp(offset);
      const planned = { tensor, key, info, sourceShape, dims, offset, length };
      offset += length;
      tensorBytes += length;
      return planned;
    });
    return {
      graphName,
      graph,
      dataFile: `${graph.file}.data`,
      tensors,
      bytes: offset,
      inputs: graph.spec.inputs.map((spec) => resolveSpec(spec, config, configFile)),
      outputs: graph.spec.outputs.map((spec) => resolveSpec(spec, config, configFile)),
    };
  });
  return { graphs, tensorBytes };
}
