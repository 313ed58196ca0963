// A small BLIP-family template and checkpoint built in the test, so that the converter's own rules (template choice,
// key/shape checks, dtype conversion, aliases, transposes, resized variables, the data-file layout, atomic output) are
// tested without the Python-made fixtures. The graph is not BLIP: logits = 2 * ((x * g) @ E^T + b), with g a vision
// weight and E, b the text head, E and b sized by text_config.vocab_size.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { buildSafetensors, f32, f64, i64, type SafetensorsTensor } from '../checkpoints/checkpoint-builders.js';

const { onnx } = onnxProto;

export const HIDDEN = 4;
export const TEMPLATE_VOCAB = 3;

export const KEYS = {
  gain: 'vision_model.post_layernorm.weight',
  decoderWeight: 'text_decoder.cls.predictions.decoder.weight',
  wordEmbeddings: 'text_decoder.bert.embeddings.word_embeddings.weight',
  decoderBias: 'text_decoder.cls.predictions.decoder.bias',
  bias: 'text_decoder.cls.predictions.bias',
  positionIds: 'text_decoder.bert.embeddings.position_ids',
} as const;

const external = (name: string, dims: number[], offset: number) =>
  onnx.TensorProto.create({
    name,
    dataType: onnx.TensorProto.DataType.FLOAT,
    dims,
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: 'toy.onnx.data' },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(4 * dims.reduce((product, size) => product * size, 1)) },
    ],
  });

const valueInfo = (name: string, dims: Array<number | string>) =>
  onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((dim) => (typeof dim === 'string' ? { dimParam: dim } : { dimValue: dim })) },
      },
    },
  });

/** The weight-less graph, as the Python template writer lays one out (external initializers, one inline constant). */
export function toyGraph(options: { decoderDims?: number[] } = {}): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'toy',
    node: [
      { opType: 'Mul', input: ['x', KEYS.gain], output: ['scaled'] },
      { opType: 'MatMul', input: ['scaled', KEYS.decoderWeight], output: ['projected'] },
      { opType: 'Add', input: ['projected', KEYS.decoderBias], output: ['shifted'] },
      { opType: 'Mul', input: ['shifted', 'two'], output: ['logits'] },
    ],
    initializer: [
      external(KEYS.gain, [HIDDEN], 0),
      external(KEYS.decoderWeight, options.decoderDims ?? [HIDDEN, TEMPLATE_VOCAB], 64),
      external(KEYS.decoderBias, [TEMPLATE_VOCAB], 128),
      onnx.TensorProto.create({ name: 'two', dataType: onnx.TensorProto.DataType.FLOAT, dims: [], rawData: f32(2) }),
    ],
    input: [valueInfo('x', ['batch', HIDDEN])],
    output: [valueInfo('logits', ['batch', TEMPLATE_VOCAB])],
    // A stale intermediate shape, which the converter must not keep.
    valueInfo: [valueInfo('projected', ['batch', TEMPLATE_VOCAB])],
  });
  const model = onnx.ModelProto.create({ irVersion: 8, producerName: 'vqa-llm-test', opsetImport: [{ domain: '', version: 17 }], graph });
  return onnx.ModelProto.encode(model).finish();
}

/** The completed config the template stands for (vocabulary 3) and the defaults that complete a raw one. */
const DEFAULTS = {
  top: { model_type: 'blip', projection_dim: 512 },
  text: { model_type: 'blip_text_model', vocab_size: 30524, hidden_size: 768, encoder_hidden_size: 768, layer_norm_eps: 1e-12, bos_token_id: 30522, eos_token_id: 2, pad_token_id: 0, sep_token_id: 102 },
  vision: { model_type: 'blip_vision_model', hidden_size: 768, image_size: 384, patch_size: 16, layer_norm_eps: 1e-5 },
};

export function toyRawConfig(overrides: { vocab?: number; visionHidden?: number } = {}): Record<string, unknown> {
  return {
    model_type: 'blip',
    architectures: ['BlipForConditionalGeneration'],
    text_config: { vocab_size: overrides.vocab ?? TEMPLATE_VOCAB, hidden_size: HIDDEN, bos_token_id: 5, sep_token_id: 3, pad_token_id: 0 },
    vision_config: { hidden_size: overrides.visionHidden ?? HIDDEN, image_size: 8, patch_size: 4 },
  };
}

function completed(raw: Record<string, unknown>): Record<string, unknown> {
  const text = { ...DEFAULTS.text, ...(raw.text_config as object) } as Record<string, unknown>;
  const vision = { ...DEFAULTS.vision, ...(raw.vision_config as object) } as Record<string, unknown>;
  text.encoder_hidden_size = vision.hidden_size;
  return { ...raw, projection_dim: 512, text_config: text, vision_config: vision };
}

export function toyTemplateJson(): Record<string, unknown> {
  const vocab = { config: 'text_config.vocab_size' };
  return {
    format: 'vqa-llm-template/1',
    id: 'toy-blip',
    kind: 'blip-captioner',
    upstream: ['test/toy-blip'],
    exporter: { torch: 'none', transformers: 'none', opset: 17 },
    config: completed(toyRawConfig()),
    defaults: DEFAULTS,
    structural: ['vision_config.hidden_size', 'vision_config.layer_norm_eps', 'text_config.hidden_size', 'text_config.encoder_hidden_size'],
    variable: ['text_config.vocab_size'],
    graphs: {
      textDecoder: {
        file: 'toy.onnx',
        spec: { inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', HIDDEN] }], outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', vocab] }] },
        tensors: [
          { name: KEYS.gain, sources: [KEYS.gain], shape: [HIDDEN], dtype: 'float32', transform: null },
          { name: KEYS.decoderWeight, sources: [KEYS.decoderWeight, KEYS.wordEmbeddings], shape: [TEMPLATE_VOCAB, HIDDEN], dims: [vocab, null], dtype: 'float32', transform: 'transpose' },
          { name: KEYS.decoderBias, sources: [KEYS.decoderBias, KEYS.bias], shape: [TEMPLATE_VOCAB], dims: [vocab], dtype: 'float32', transform: null },
        ],
      },
    },
  };
}

/** bfloat16 bytes of values that bfloat16 holds exactly. */
export function bf16(...values: number[]): Uint8Array {
  const words = new Uint32Array(Float32Array.from(values).buffer);
  return new Uint8Array(Uint16Array.from(words, (word) => word >>> 16).buffer);
}

/** The weights of a checkpoint with `vocab` entries, in the dtypes the hub's files mix. */
export function toyWeights(vocab: number) {
  const gain = [0.5, -1, 2, 0.25];
  const embeddings = Array.from({ length: vocab * HIDDEN }, (_, index) => ((index % 7) - 3) * 0.125);
  const bias = Array.from({ length: vocab }, (_, index) => index * 0.5 - 1);
  return { gain, embeddings, bias };
}

export function toyTensors(vocab: number): Record<string, SafetensorsTensor> {
  const { gain, embeddings, bias } = toyWeights(vocab);
  return {
    [KEYS.gain]: { dtype: 'F64', shape: [HIDDEN], data: f64(...gain) },
    [KEYS.wordEmbeddings]: { dtype: 'BF16', shape: [vocab, HIDDEN], data: bf16(...embeddings) },
    [KEYS.bias]: { dtype: 'F32', shape: [vocab], data: f32(...bias) },
    [KEYS.positionIds]: { dtype: 'I64', shape: [1, 4], data: i64(0n, 1n, 2n, 3n) },
  };
}

/** logits = 2 * ((x * g) @ E^T + b) for one row x. */
export function toyLogits(x: number[], vocab: number): number[] {
  const { gain, embeddings, bias } = toyWeights(vocab);
  return bias.map((shift, row) => 2 * (x.reduce((sum, value, column) => sum + value * gain[column]! * embeddings[row * HIDDEN + column]!, 0) + shift));
}

export const VOCAB_TXT = ['[PAD]', '[unused0]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'cat', 'dog', '##s'].join('\n') + '\n';

export interface ToyFixture {
  root: string;
  templates: string;
  checkpoint: string;
  /** A fresh output path inside root. */
  out: (name: string) => string;
  writeCheckpoint: (options?: { vocab?: number; visionHidden?: number; tensors?: Record<string, SafetensorsTensor> }) => Promise<string>;
  remove: () => Promise<void>;
}

/** A temporary folder with the toy template under templates/toy-blip and a checkpoint under checkpoint/. */
export async function toyFixture(options: { template?: Record<string, unknown>; graph?: Uint8Array } = {}): Promise<ToyFixture> {
  const root = await mkdtemp(path.join(tmpdir(), 'vqa-llm-convert-'));
  const templates = path.join(root, 'templates');
  await mkdir(path.join(templates, 'toy-blip'), { recursive: true });
  await writeFile(path.join(templates, 'toy-blip', 'template.json'), JSON.stringify(options.template ?? toyTemplateJson(), null, 2));
  await writeFile(path.join(templates, 'toy-blip', 'toy.onnx'), options.graph ?? toyGraph());
  const checkpoint = path.join(root, 'checkpoint');
  const writeCheckpoint: ToyFixture['writeCheckpoint'] = async (checkpointOptions = {}) => {
    await rm(checkpoint, { recursive: true, force: true });
    await mkdir(checkpoint, { recursive: true });
    const vocab = checkpointOptions.vocab ?? 5;
    await writeFile(path.join(checkpoint, 'config.json'), JSON.stringify(toyRawConfig({ vocab, visionHidden: checkpointOptions.visionHidden })));
    await writeFile(path.join(checkpoint, 'model.safetensors'), buildSafetensors(checkpointOptions.tensors ?? toyTensors(vocab)));
    await writeFile(path.join(checkpoint, 'vocab.txt'), VOCAB_TXT);
    return checkpoint;
  };
  await writeCheckpoint();
  return { root, templates, checkpoint, out: (name) => path.join(root, 'out', name), writeCheckpoint, remove: () => rm(root, { recursive: true, force: true }) };
}
