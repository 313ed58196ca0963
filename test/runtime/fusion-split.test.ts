import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitImageWork } from '../../dist/src/runtime/fusion-split.js';
import { FusionParts } from '../../dist/src/runtime/fusion-parts.js';
import { int64Tensor, OnnxGraph, type TensorData } from '../../dist/src/runtime/onnx-session.js';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import { InvalidOptionError } from '../../dist/src/errors/index.js';
import { fixtureImage, tinyVle } from '../helpers/fixtures.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(name: string, dims: number[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((dimValue) => ({ dimValue })) } } },
  };
}

function floats(name: string, dims: number[], values: number[]): onnxProto.onnx.ITensorProto {
  return { name, dims, dataType: FLOAT, rawData: new Uint8Array(new Float32Array(values).buffer) };
}

/** A model from nodes, with `image` and `text` inputs ([1, 4] floats) and the initializer W ([4, 4]). */
function model(nodes: onnxProto.onnx.INodeProto[], outputs = ['out']): Uint8Array {
  const weights = Array.from({ length: 16 }, (_, index) => ((index * 7) % 5) / 5 - 0.4);
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        node: nodes,
        input: [valueInfo('image', [1, 4]), valueInfo('text', [1, 4])],
        output: outputs.map((name) => ({ name })),
        initializer: [floats('W', [4, 4], weights)],
      },
    }),
  ).finish();
}

const node = (opType: string, input: string[], output: string[], attribute: onnxProto.onnx.IAttributeProto[] = []) => ({ opType, input, output, attribute });

/** image -> a -> b -> c (image only, reading W2 = W + W); text reads W2 too; out mixes both. */
const twoStreams = [
  node('Add', ['W', 'W'], ['W2']),
  node('MatMul', ['image', 'W'], ['a']),
  node('Relu', ['a'], ['b']),
  node('MatMul', ['b', 'W2'], ['c']),
  node('MatMul', ['text', 'W2'], ['t']),
  node('Add', ['c', 't'], ['out']),
];

const decode = (bytes: Uint8Array) => onnx.ModelProto.decode(bytes).graph!;
const tensor = (values: number[]): TensorData => ({ type: 'float32', data: new Float32Array(values), dims: [1, 4] });

describe('splitImageWork', () => {
  it('should cut a graph where the image-only values meet the rest, putting constant work read by both in both', () => {
    const split = splitImageWork(model(twoStreams), ['image']);
    if (!('imagePart' in split)) throw new Error(`not split: ${split.reason}`);
    expect(split.handoff).toEqual(['c']);
    const image = decode(split.imagePart);
    expect(image.input!.map((input) => input.name)).toEqual(['image']);
    expect(image.output!.map((output) => output.name)).toEqual(['c']);
    expect(image.node!.map((item) => item.output![0])).toEqual(['W2', 'a', 'b', 'c']);
    const text = decode(split.textPart({ c: { type: 'float32', shape: [1, 4] } }));
    expect(text.input!.map((input) => input.name)).toEqual(['text', 'c']);
    // The handed-over input keeps onnxruntime's element type and rank; unknown sizes stay unknown, not a shared name.
    const dims = (types: Parameters<typeof split.textPart>[0]) =>
      decode(split.textPart(types)).input![1]!.type!.tensorType!.shape?.dim?.map((dim) => (dim.dimParam ? dim.dimParam : dim.dimValue === undefined || dim.dimValue === null ? '?' : Number(dim.dimValue)));
    expect(dims({ c: { type: 'float32', shape: [1, 4] } })).toEqual([1, 4]);
    expect(dims({ c: { type: 'float32', shape: ['batch', '', -1] } })).toEqual(['batch', '?', '?']);
    expect(dims({ c: { type: 'float32', shape: [] } })).toBeUndefined();
    expect(decode(split.textPart({ c: { type: 'int64' } })).input![1]!.type!.tensorType!.elemType).toBe(onnx.TensorProto.DataType.INT64);
    expect(() => split.textPart({ c: { type: 'bool' } })).toThrow(/no usable element type/);
    expect(text.node!.map((item) => item.output![0])).toEqual(['W2', 't', 'out']);
    expect(text.initializer!.map((item) => item.name)).toEqual(['W']);
    expect(split.nodes).toEqual({ image: 4, text: 3 });
  });

  it('should compute what the whole graph computes when the parts run in onnxruntime', async () => {
    const bytes = model(twoStreams);
    const split = splitImageWork(bytes, ['image']);
    if (!('imagePart' in split)) throw new Error(`not split: ${split.reason}`);
    const whole = await OnnxGraph.fromBytes('whole', bytes, 'test', tmpdir());
    const imagePart = await OnnxGraph.fromBytes('image', split.imagePart, 'test', tmpdir());
    expect(imagePart.outputTypes.c).toEqual({ type: 'float32', shape: [1, 4] });
    const textPart = await OnnxGraph.fromBytes('text', split.textPart(imagePart.outputTypes), 'test', tmpdir());
    const feeds = { image: tensor([0.5, -1, 2, 0.25]), text: tensor([1, 0, -0.5, 3]) };
    const expected = (await whole.run(feeds)).out!.data;
    const state = await imagePart.run({ image: feeds.image });
    const actual = (await textPart.run({ text: feeds.text, ...state })).out!.data;
    expect([...actual]).toEqual([...expected]);
    await Promise.all([whole.dispose(), imagePart.dispose(), textPart.dispose()]);
  });

  it('should treat empty names as omitted optional inputs and outputs, never as a value of either side', async () => {
    // Dropout's optional mask output and Clip's optional min and max are left out ('').
    const nodes = [
      node('Add', ['W', 'W'], ['W2']),
      node('MatMul', ['image', 'W'], ['a']),
      node('Dropout', ['a'], ['b', '']),
      node('MatMul', ['b', 'W2'], ['c']),
      node('MatMul', ['text', 'W2'], ['t0']),
      node('Clip', ['t0', '', ''], ['t']),
      node('Add', ['c', 't'], ['out']),
    ];
    const bytes = model(nodes);
    const split = splitImageWork(bytes, ['image']);
    if (!('imagePart' in split)) throw new Error(`not split: ${split.reason}`);
    expect(split.handoff).toEqual(['c']);
    expect(split.nodes).toEqual({ image: 4, text: 4 });
    const whole = await OnnxGraph.fromBytes('whole', bytes, 'test', tmpdir());
    const imagePart = await OnnxGraph.fromBytes('image', split.imagePart, 'test', tmpdir());
    const textPart = await OnnxGraph.fromBytes('text', split.textPart(imagePart.outputTypes), 'test', tmpdir());
    const feeds = { image: tensor([1, 2, -3, 0.5]), text: tensor([0, 1, 2, -1]) };
    const state = await imagePart.run({ image: feeds.image });
    expect([...(await textPart.run({ text: feeds.text, ...state })).out!.data]).toEqual([...(await whole.run(feeds)).out!.data]);
    await Promise.all([whole.dispose(), imagePart.dispose(), textPart.dispose()]);
  });

  it('should leave whole a graph whose text side reads the image input itself', () => {
    const nodes = [...twoStreams.slice(0, 5), node('Add', ['image', 't'], ['u']), node('Add', ['c', 'u'], ['out'])];
    expect(splitImageWork(model(nodes), ['image'])).toEqual({ reason: 'image_input_read_by_text' });
  });

  it('should leave whole a graph with no image-only computation', () => {
    expect(splitImageWork(model([node('Add', ['image', 'text'], ['out'])]), ['image'])).toEqual({ reason: 'no_image_work' });
  });

  it('should leave whole a graph with control flow, whose subgraphs read values their node does not list', () => {
    const branch = { name: 'branch', node: [node('Identity', ['c'], ['y'])], output: [valueInfo('y', [1, 4])] };
    const nodes = [
      ...twoStreams,
      node('ReduceSum', ['out'], ['s'], [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]),
      node('Greater', ['s', 's'], ['flag']),
      node('If', ['flag'], ['picked'], [
        { name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch },
        { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch },
      ]),
    ];
    expect(splitImageWork(model(nodes, ['picked']), ['image'])).toEqual({ reason: 'subgraphs' });
  });

  it('should leave whole a graph with an output that depends on the image only', () => {
    expect(splitImageWork(model(twoStreams, ['out', 'b']), ['image'])).toEqual({ reason: 'image_only_output' });
  });

  it('should leave whole a graph without the image input', () => {
    expect(splitImageWork(model(twoStreams), ['pixels'])).toEqual({ reason: 'no_image_input' });
  });
});

describe('VLE fusion in two parts', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'fusion-split-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('should split tiny-vle fusion so that the image part reads only image_embeds and the text part never does', async () => {
    const split = splitImageWork(await readFile(join(tinyVle, 'onnx', 'fusion.onnx')), ['image_embeds']);
    if (!('imagePart' in split)) throw new Error(`not split: ${split.reason}`);
    expect(decode(split.imagePart).input!.map((input) => input.name)).toEqual(['image_embeds']);
    expect(split.handoff.length).toBeGreaterThan(0);
    const text = decode(split.textPart(Object.fromEntries(split.handoff.map((name) => [name, { type: 'float32' }]))));
    expect(text.input!.map((input) => input.name)).toEqual(['input_ids', 'attention_mask', ...split.handoff]);
    expect(text.node!.some((item) => (item.input ?? []).includes('image_embeds'))).toBe(false);
  });

  it('should read external weights relative to the graph file, as the converter and the exporter write them', async () => {
    // tiny-vle's fusion with every initializer over 64 bytes moved to fusion.onnx.data, as in a converted folder.
    const proto = onnx.ModelProto.decode(await readFile(join(tinyVle, 'onnx', 'fusion.onnx')));
    const chunks: Uint8Array[] = [];
    let offset = 0;
    for (const initializer of proto.graph!.initializer!) {
      const raw = initializer.rawData;
      if (!raw || raw.length <= 64) continue;
      chunks.push(raw);
      initializer.rawData = new Uint8Array(0);
      initializer.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      initializer.externalData = [
        { key: 'location', value: 'fusion.onnx.data' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ].map((entry) => onnx.StringStringEntryProto.create(entry));
      offset += raw.length;
    }
    expect(chunks.length).toBeGreaterThan(10);
    const path = join(scratch, 'fusion.onnx');
    await writeFile(path, onnx.ModelProto.encode(proto).finish());
    await writeFile(`${path}.data`, Buffer.concat(chunks));

    const spec = JSON.parse(await readFile(join(tinyVle, 'vqa-llm.json'), 'utf8')).graphs.fusion;
    const whole = await OnnxGraph.create(path, { name: 'fusion', ...spec });
    const parts = await FusionParts.open('fusion', { path, ...spec }, {}, 1 << 20);
    if ('whole' in parts) throw new Error(`tiny-vle fusion was not split: ${parts.whole}`);
    const imageEmbeds: TensorData = { type: 'float32', data: Float32Array.from({ length: 17 * 32 }, (_, index) => Math.sin(index * 0.37)), dims: [1, 17, 32] };
    const ids = [1, 5, 9, 2];
    const question = { input_ids: int64Tensor(ids, [1, 4]), attention_mask: int64Tensor([1, 1, 1, 1], [1, 4]) };
    const expected = (await whole.run({ ...question, image_embeds: imageEmbeds })).logits!.data as Float32Array;
    const { state } = await parts.imageState(imageEmbeds, 'key');
    expect(parts.cached('key')).toBe(state);
    const actual = await parts.logits(question, state);
    expect(actual.length).toBe(expected.length);
    actual.forEach((value, index) => expect(Math.abs(value - expected[index]!)).toBeLessThan(1e-5));
    await Promise.all([whole.dispose(), parts.dispose()]);
  });

  it('should run the graph whole, saying why, when its parts do not match the manifest', async () => {
    const spec = JSON.parse(await readFile(join(tinyVle, 'vqa-llm.json'), 'utf8')).graphs.fusion;
    const path = join(tinyVle, 'onnx', 'fusion.onnx');
    const extraInput = { ...spec, inputs: [...spec.inputs, { name: 'token_type_ids', dtype: 'int64', shape: ['batch', 'sequence'] }] };
    const opened = await FusionParts.open('fusion', { path, ...extraInput }, {}, 1 << 20);
    expect(opened).toEqual({ whole: expect.stringContaining('where the manifest lists') });
    expect(await FusionParts.open('fusion', { path, ...spec }, {}, 0)).toEqual({ whole: 'fusionCacheBytes is 0' });
  });
});

describe('VleVqa with the fusion image-state cache', () => {
  let whole: VleVqa;
  let split: VleVqa;

  beforeAll(async () => {
    [whole, split] = await Promise.all([VleVqa.load(tinyVle, { fusionCacheBytes: 0 }), VleVqa.load(tinyVle)]);
  });

  afterAll(async () => {
    await Promise.all([whole.dispose(), split.dispose()]);
  });

  const questions = ['What is in the picture?', 'How many dogs are there?', 'What color is the truck?', 'Is the man holding a pole?'];

  it('should give the whole graph\'s answers and scores, first questions and follow-ups alike', async () => {
    for (const image of ['fishing.jpg', 'truck.jpg', 'synthetic.png']) {
      for (const question of questions) {
        const expected = await whole.candidates(fixtureImage(image), question, { topK: 16 });
        const actual = await split.candidates(fixtureImage(image), question, { topK: 16 });
        expect(actual.candidates.map((candidate) => candidate.answer)).toEqual(expected.candidates.map((candidate) => candidate.answer));
        actual.candidates.forEach((candidate, index) => expect(Math.abs(candidate.score - expected.candidates[index]!.score)).toBeLessThan(1e-6));
      }
    }
  });

  it('should say how each runs its fusion graph', () => {
    expect(whole.fusionImageCache).toEqual({ whole: 'fusionCacheBytes is 0' });
    expect('handoff' in split.fusionImageCache && split.fusionImageCache.handoff.length).toBe(4);
  });

  it('should refuse a cache budget that is not a whole number of bytes', async () => {
    await expect(VleVqa.load(tinyVle, { fusionCacheBytes: 1.5 })).rejects.toThrow(InvalidOptionError);
    await expect(VleVqa.load(tinyVle, { fusionCacheBytes: -1 })).rejects.toThrow(/fusionCacheBytes must be an integer/);
  });

  it('should run the image part once per image, and only the text part for a follow-up', async () => {
    split.clearCache();
    const first = await split.candidates(fixtureImage('truck.jpg'), questions[0]!);
    expect(first.imageCached).toBe(false);
    expect(first.timings.fusionImage).toBeGreaterThan(0);
    expect(first.timings.vision).toBeGreaterThan(0);
    const followUp = await split.candidates(fixtureImage('truck.jpg'), questions[1]!);
    expect(followUp.imageCached).toBe(true);
    expect(followUp.timings.fusionImage).toBeUndefined();
    // The whole graph never has a fusion image part to report.
    const plain = await whole.candidates(fixtureImage('truck.jpg'), questions[1]!);
    expect(plain.timings.fusionImage).toBeUndefined();
  });

  it('should compute the image work again after clearCache', async () => {
    await split.candidates(fixtureImage('fishing.jpg'), questions[0]!);
    split.clearCache();
    const again = await split.candidates(fixtureImage('fishing.jpg'), questions[1]!);
    expect(again.imageCached).toBe(false);
    expect(again.timings.vision).toBeGreaterThan(0);
    expect(again.timings.fusionImage).toBeGreaterThan(0);
  });

  it('should keep nothing in a budget smaller than one image state, and still answer', async () => {
    const small = await VleVqa.load(tinyVle, { fusionCacheBytes: 1 });
    try {
      for (const question of questions.slice(0, 2)) {
        const result = await small.candidates(fixtureImage('truck.jpg'), question);
        // The embeddings cache still serves the follow-up, but fusion's image part runs every time.
        expect(result.timings.fusionImage).toBeGreaterThan(0);
        const expected = await whole.candidates(fixtureImage('truck.jpg'), question);
        expect(result.candidates.map((candidate) => candidate.answer)).toEqual(expected.candidates.map((candidate) => candidate.answer));
      }
    } finally {
      await small.dispose();
    }
  });
});
