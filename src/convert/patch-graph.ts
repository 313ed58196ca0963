// Fills a weight-less template graph's external initializers with the converted folder's layout: their dims (sizes
// tied to variables change), and where their bytes are in the data file. Graph inputs and outputs tied to a variable
// get its size. The graph structure itself is left as the exporter wrote it.
import onnxProto from 'onnx-proto';
import { ConversionError } from '../errors/conversion-error.js';
import type { GraphPlan } from './weight-plan.js';

const { onnx } = onnxProto;

type Int64 = number | { toNumber(): number };
const toNumber = (value: Int64 | null | undefined): number => (value === null || value === undefined ? 0 : typeof value === 'number' ? value : value.toNumber());

const ELEMENT_TYPE = { float32: onnx.TensorProto.DataType.FLOAT, int64: onnx.TensorProto.DataType.INT64 } as const;

export interface PatchGraphOptions {
  /** The template's .onnx bytes. */
  template: Uint8Array;
  plan: GraphPlan;
  /** The template graph's path, for error messages. */
  templateFile: string;
}

/**
 * The graph of `plan` as the model folder's .onnx: external initializers pointing into `<file>.data` at the planned
 * offsets, with the planned dims; no intermediate value_info (shapes there could contradict resized tensors).
 *
 * @throws ConversionError `bad_template` when the template graph and template.json disagree.
 */
export function patchGraph({ template, plan, templateFile }: PatchGraphOptions): Uint8Array {
  const fail = (problem: string): never => {
    throw new ConversionError('bad_template', `${templateFile}: ${problem}.`, { file: templateFile });
  };
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(template);
  } catch (error) {
    throw new ConversionError('bad_template', `${templateFile} is not an ONNX model: ${(error as Error).message}.`, { file: templateFile, cause: error });
  }
  const graph = model.graph ?? fail('the model has no graph');
  const initializers = new Map((graph.initializer ?? []).map((initializer) => [initializer.name, initializer]));
  const planned = new Set<string>();
  for (const item of plan.tensors) {
    const initializer = initializers.get(item.tensor.name) ?? fail(`template.json lists initializer ${JSON.stringify(item.tensor.name)}, which the graph lacks`);
    planned.add(item.tensor.name);
    if (initializer.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) fail(`initializer ${JSON.stringify(item.tensor.name)} is not external data`);
    if (initializer.dataType !== ELEMENT_TYPE[item.tensor.dtype]) fail(`initializer ${JSON.stringify(item.tensor.name)} is not ${item.tensor.dtype}`);
    const templateDims = item.tensor.transform === 'transpose' ? [...item.tensor.shape].reverse() : item.tensor.shape;
    const graphDims = (initializer.dims ?? []).map(toNumber);
    if (graphDims.length !== templateDims.length || graphDims.some((size, axis) => size !== templateDims[axis])) {
      fail(`initializer ${JSON.stringify(item.tensor.name)} has dims ${JSON.stringify(graphDims)} where template.json implies ${JSON.stringify(templateDims)}`);
    }
    initializer.dims = [...item.dims];
    // External tensors carry no bytes: a present-but-empty raw_data field would still be written.
    delete initializer.rawData;
    initializer.externalData = [
      { key: 'location', value: plan.dataFile },
      { key: 'offset', value: String(item.offset) },
      { key: 'length', value: String(item.length) },
    ].map((entry) => onnx.StringStringEntryProto.create(entry));
  }
  for (const initializer of graph.initializer ?? []) {
    if (initializer.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL && !planned.has(initializer.name ?? '')) {
      fail(`initializer ${JSON.stringify(initializer.name)} is external data that template.json gives no source for`);
    }
  }

  const templateSpecs = [...plan.graph.spec.inputs, ...plan.graph.spec.outputs];
  const resolvedSpecs = [...plan.inputs, ...plan.outputs];
  const values = new Map([...(graph.input ?? []), ...(graph.output ?? [])].map((value) => [value.name, value]));
  templateSpecs.forEach((spec, index) => {
    spec.shape.forEach((dim, axis) => {
      if (typeof dim !== 'object') return;
      const value = values.get(spec.name) ?? fail(`the graph has no input or output ${JSON.stringify(spec.name)}`);
      const dims = value.type?.tensorType?.shape?.dim;
      const current = dims?.[axis] ?? fail(`${JSON.stringify(spec.name)} has no dimension ${axis}`);
      const dimension = onnx.TensorShapeProto.Dimension.create({ dimValue: resolvedSpecs[index]!.shape[axis] as number });
      if (current.denotation) dimension.denotation = current.denotation;
      dims![axis] = dimension;
    });
  });
  graph.valueInfo = [];
  return onnx.ModelProto.encode(model).finish();
}
