// Splits a graph into the part that depends only on its image inputs and the rest, so that the image part can run
// once per image and its results be cached (issue 14: VLE's fusion graph spends ~8-10% of a question on work that
// depends only on the image: layer 0's image self-attention, its cross-attention queries, and the text stream's first
// cross-attention keys and values).
//
// The cut is found from the graph itself, not from names: every node whose inputs are all image-derived (or
// constant) goes to the image part; the tensors the image part hands over are those it computes and the rest reads.
// Both parts keep the original nodes, attributes and initializers, so they compute the same arithmetic; onnxruntime
// may fuse across the cut differently, which moves results only within float tolerance.
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

type ModelProto = onnxProto.onnx.ModelProto;
type NodeProto = onnxProto.onnx.INodeProto;

/**
 * Element types a handed-over tensor may have, as onnxruntime names them (its session metadata): the ones the
 * runtime passes between threads (OnnxGraph.run returns no others).
 */
const ELEMENT_TYPES: Record<string, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  int64: onnx.TensorProto.DataType.INT64,
};

/** What a handed-over tensor is, as onnxruntime reports the image part's outputs. */
export interface HandoffType {
  type: string;
  /** Sizes, axis names, or "" for unknown sizes, as onnxruntime reports them; [] or absent when not inferred. */
  shape?: readonly (number | string)[];
}

export interface ImageSplit {
  /** The image part (image inputs -> `handoff`), an encoded ModelProto. */
  imagePart: Uint8Array;
  /** Tensors the image part computes and the text part reads, in the image part's output order. */
  handoff: string[];
  /** Nodes in each part (free nodes needed by both are counted in both). */
  nodes: { image: number; text: number };
  /**
   * The text part (the other inputs and `handoff` -> the original outputs). Graph inputs need a type, which only a
   * type inference knows for intermediate tensors: pass the types onnxruntime reports for the image part's outputs.
   */
  textPart(types: Record<string, HandoffType>): Uint8Array;
}

/** Why a graph was not split (for the log and the tests); undefined from `splitImageWork` means one of these. */
export type NoSplitReason = 'no_image_input' | 'no_image_work' | 'subgraphs' | 'sparse_initializers' | 'image_only_output' | 'image_input_read_by_text';

/**
 * The image-only part of `model` and the rest, or the reason there is none.
 *
 * @example
 * const split = splitImageWork(await readFile('onnx/fusion.onnx'), ['image_embeds']);
 * if ('imagePart' in split) { ... }
 */
export function splitImageWork(modelBytes: Uint8Array, imageInputs: readonly string[]): ImageSplit | { reason: NoSplitReason } {
  const model = onnx.ModelProto.decode(modelBytes);
  const graph = model.graph;
  if (!graph) return { reason: 'no_image_input' };
  if ((graph.sparseInitializer ?? []).length > 0) return { reason: 'sparse_initializers' };
  const nodes = graph.node ?? [];
  // Control flow reads outer-scope values that the node's inputs do not list: leave such graphs whole.
  if (nodes.some((node) => (node.attribute ?? []).some((attribute) => attribute.g || (attribute.graphs ?? []).length > 0))) {
    return { reason: 'subgraphs' };
  }

  // Where each value comes from: a constant (initializer, or computed from constants only), the image inputs only,
  // or something else (a text input, possibly mixed with the image).
  // An empty name is an omitted optional input or output: never a value.
  type Origin = 'constant' | 'image' | 'mixed';
  const origin = new Map<string, Origin>();
  const initializerNames = new Set((graph.initializer ?? []).map((tensor) => tensor.name ?? ''));
  for (const name of initializerNames) origin.set(name, 'constant');
  const realInputs = (graph.input ?? []).filter((input) => !initializerNames.has(input.name ?? ''));
  for (const input of realInputs) origin.set(input.name ?? '', imageInputs.includes(input.name ?? '') ? 'image' : 'mixed');
  if (!realInputs.some((input) => imageInputs.includes(input.name ?? ''))) return { reason: 'no_image_input' };

  const nodeOrigin: Origin[] = nodes.map((node) => {
    const inputs = (node.input ?? []).filter((name) => name !== '').map((name) => origin.get(name) ?? 'mixed');
    const found: Origin = inputs.includes('mixed') ? 'mixed' : inputs.includes('image') ? 'image' : 'constant';
    for (const output of node.output ?? []) if (output !== '') origin.set(output, found);
    return found;
  });
  if ((graph.output ?? []).some((output) => origin.get(output.name ?? '') !== 'mixed')) return { reason: 'image_only_output' };

  // The handoff: image values that mixed nodes read, in first-use order.
  const handoff: string[] = [];
  nodes.forEach((node, index) => {
    if (nodeOrigin[index] !== 'mixed') return;
    for (const name of node.input ?? []) {
      if (name !== '' && origin.get(name) === 'image' && !imageInputs.includes(name) && !handoff.includes(name)) handoff.push(name);
    }
  });
  const imageComputes = nodeOrigin.includes('image');
  if (handoff.length === 0 || !imageComputes) return { reason: 'no_image_work' };

  // A cached image state must be all the text part needs of the image: not the image inputs themselves.
  if (nodes.some((node, index) => nodeOrigin[index] === 'mixed' && (node.input ?? []).some((name) => imageInputs.includes(name)))) {
    return { reason: 'image_input_read_by_text' };
  }

  const imageNodes = partNodes(nodes, nodeOrigin, 'image', handoff);
  const textOutputs = (graph.output ?? []).map((output) => output.name ?? '');
  const textNodes = partNodes(nodes, nodeOrigin, 'mixed', textOutputs);

  const imageGraph = onnx.GraphProto.create({
    name: `${graph.name ?? 'graph'}_image_part`,
    node: imageNodes,
    initializer: usedInitializers(graph.initializer ?? [], imageNodes),
    input: realInputs.filter((input) => imageInputs.includes(input.name ?? '')),
    // Outputs without a type: onnxruntime infers them, and reports them for the text part's inputs.
    output: handoff.map((name) => onnx.ValueInfoProto.create({ name })),
  });
  return {
    imagePart: encodeWith(model, imageGraph),
    handoff,
    nodes: { image: imageNodes.length, text: textNodes.length },
    textPart(types) {
      const handoffInputs = handoff.map((name) => {
        const found = types[name];
        const elemType = found ? ELEMENT_TYPES[found.type] : undefined;
        if (!found || elemType === undefined) throw new Error(`no usable element type for handed-over tensor ${name} (${found?.type ?? 'missing'})`);
        const shape = handoffShape(found.shape);
        return onnx.ValueInfoProto.create({ name, type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType, ...(shape ? { shape } : {}) }) }) });
      });
      const textGraph = onnx.GraphProto.create({
        name: `${graph.name ?? 'graph'}_text_part`,
        node: textNodes,
        initializer: usedInitializers(graph.initializer ?? [], textNodes),
        input: [...realInputs.filter((input) => !imageInputs.includes(input.name ?? '')), ...handoffInputs],
        output: graph.output ?? [],
      });
      return encodeWith(model, textGraph);
    },
  };
}

/**
 * A handed-over input's shape from onnxruntime's metadata, keeping its rank (onnxruntime's shape-dependent fusions
 * need it): a size stays a size, a named axis a named axis, an unknown size ("" or negative) an unknown dimension.
 * An empty list is how onnxruntime reports a shape it could not infer (as well as a scalar): no shape then.
 */
function handoffShape(shape: readonly (number | string)[] | undefined): onnxProto.onnx.TensorShapeProto | undefined {
  if (!shape || shape.length === 0) return undefined;
  return onnx.TensorShapeProto.create({
    dim: shape.map((size) =>
      onnx.TensorShapeProto.Dimension.create(
        typeof size === 'number' ? (size >= 0 ? { dimValue: size } : {}) : size === '' ? {} : { dimParam: size },
      ),
    ),
  });
}

/**
 * The nodes of one part, in the original order: those of the part's origin that its outputs need, with the
 * constant-only nodes they read (a constant subgraph both parts read is in both).
 */
function partNodes(nodes: NodeProto[], nodeOrigin: string[], part: 'image' | 'mixed', outputs: readonly string[]): NodeProto[] {
  const needed = new Set(outputs);
  const keep = new Array<boolean>(nodes.length).fill(false);
  for (let index = nodes.length - 1; index >= 0; index -= 1) {
    const node = nodes[index]!;
    const wanted = (node.output ?? []).some((name) => name !== '' && needed.has(name));
    const kind = nodeOrigin[index];
    if (!wanted || (kind !== part && kind !== 'constant')) continue;
    keep[index] = true;
    for (const name of node.input ?? []) if (name !== '') needed.add(name);
  }
  return nodes.filter((_, index) => keep[index]);
}

function usedInitializers(initializers: onnxProto.onnx.ITensorProto[], nodes: NodeProto[]): onnxProto.onnx.ITensorProto[] {
  const read = new Set(nodes.flatMap((node) => node.input ?? []));
  return initializers.filter((tensor) => read.has(tensor.name ?? ''));
}

function encodeWith(model: ModelProto, graph: onnxProto.onnx.GraphProto): Uint8Array {
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: model.irVersion,
      opsetImport: model.opsetImport,
      producerName: model.producerName,
      producerVersion: model.producerVersion,
      domain: model.domain,
      modelVersion: model.modelVersion,
      functions: model.functions,
      graph,
    }),
  ).finish();
}
