// int8 for real (models/vqa_llm_upstream/int8.py): copies of the tiny test models given int8 variants by the
// exporter's own quantization (onnxruntime's quantize_dynamic, as `models/export.py --int8` runs it), loaded through
// the manifest's `variants.int8` with the runtime's int8 option, and compared with their fp32 graphs.
//
// Tolerances are about 2x what was measured (onnxruntime 1.30, x86-64 with AVX2 and no VNNI, where u8 x s8 products
// can saturate); the figures are printed. The tiny models' random weights are spread wider than trained ones, and
// their decisions are often near ties, so greedy captions and top-1 answers are reported, not required to agree.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { loadModelFolder } from '../../dist/src/runtime/model-loader.js';
import { OnnxGraph, type TensorData } from '../../dist/src/runtime/onnx-session.js';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import { maxAbsDifference, readReference, root, tinyBlip, tinyVle, toTensor, type BlipReference, type TensorJson, type VleReference } from '../helpers/fixtures.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from './upstream-output.js';

interface GraphSide {
  file: string;
  bytes: number;
  ops: Record<string, number>;
  weightProducts: { direct: number; viaIdentity: number };
}

interface Int8Summary {
  onnxruntime: string;
  models: Record<string, { graphs: Record<string, { fp32: GraphSide; int8: GraphSide }>; pythonInt8: Record<string, TensorJson & { question?: string }> }>;
}

interface Manifest {
  graphs: Record<string, { file: string; variants?: { int8?: string }; inputs: { name: string; shape: (number | string)[] }[]; outputs: { name: string }[] }>;
  files: Record<string, { bytes: number }>;
}

const MODELS = { 'tiny-blip': 'blip-captioner', 'tiny-vle': 'vle-vqa' } as const;
const QUANTIZED_OPS = ['MatMulInteger', 'DynamicQuantizeLinear', 'ConvInteger'];

// Relative L2 error ‖int8 − fp32‖ / ‖fp32‖ of each graph's outputs, both sides fed the same fp32 inputs.
const GRAPH_TOLERANCE: Record<string, number> = {
  visionEncoder: 0.05,
  crossAttentionCache: 0.1,
  textDecoder: 0.08,
  imageEncoder: 0.08,
  fusion: 0.15,
};
// End to end (int8 image encoder and int8 fusion): the largest |score difference| over every label of every case.
const SCORE_TOLERANCE = 0.05;
// Node and Python run the same onnxruntime on the same int8 graph.
const NODE_PYTHON_TOLERANCE = 1e-4;

const folderOf = (model: string): string => upstreamPath('int8', model);
const readManifest = (model: string): Manifest => JSON.parse(readFileSync(join(folderOf(model), 'vqa-llm.json'), 'utf8')) as Manifest;

function relativeError(reference: ArrayLike<number>, other: ArrayLike<number>): number {
  expect(other.length).toBe(reference.length);
  let difference = 0;
  let norm = 0;
  for (let index = 0; index < reference.length; index += 1) {
    difference += (reference[index]! - other[index]!) ** 2;
    norm += reference[index]! ** 2;
  }
  return Math.sqrt(difference / norm);
}

const float = (json: TensorJson): TensorData => {
  const tensor = toTensor(json);
  return { type: 'float32', data: tensor.data, dims: tensor.dims };
};
const int64 = (values: number[]): TensorData => ({ type: 'int64', data: BigInt64Array.from(values.map(BigInt)), dims: [1, values.length] });

/** Both variants of one graph of a model folder, as plain sessions. */
async function graphPair(model: string, name: string): Promise<{ fp32: OnnxGraph; int8: OnnxGraph; dispose(): Promise<void> }> {
  const graph = readManifest(model).graphs[name]!;
  const open = (file: string) => OnnxGraph.create(join(folderOf(model), file), { name, ...graph } as never);
  const [fp32, int8] = await Promise.all([open(graph.file), open(graph.variants!.int8!)]);
  return { fp32, int8, dispose: async () => void (await Promise.all([fp32.dispose(), int8.dispose()])) };
}

/** The outputs (all, or those named) of both variants concatenated in output order, for one set of feeds. */
async function runPair(pair: { fp32: OnnxGraph; int8: OnnxGraph }, feeds: Record<string, TensorData>, outputNames?: string[]): Promise<{ fp32: number[]; int8: number[] }> {
  const [fp32, int8] = await Promise.all([pair.fp32.run(feeds, outputNames), pair.int8.run(feeds, outputNames)]);
  const flatten = (outputs: Record<string, TensorData>) => Object.keys(outputs).flatMap((key) => Array.from(outputs[key]!.data as Float32Array));
  return { fp32: flatten(fp32), int8: flatten(int8) };
}

function emptyPast(model: string): Record<string, TensorData> {
  const feeds: Record<string, TensorData> = {};
  for (const input of readManifest(model).graphs.textDecoder!.inputs.filter((spec) => spec.name.startsWith('past_'))) {
    const [, heads, , headDim] = input.shape as number[];
    feeds[input.name] = { type: 'float32', data: new Float32Array(0), dims: [1, heads!, 0, headDim!] };
  }
  return feeds;
}

/** The committed photos (test/fixtures/images and eval), each once: two files are in both folders. */
function images(): string[] {
  const list = (folder: string, pattern: RegExp) =>
    readdirSync(join(root, 'test', 'fixtures', folder))
      .filter((name) => pattern.test(name))
      .sort()
      .map((name) => join(root, 'test', 'fixtures', folder, name));
  const seen = new Set<string>();
  return [...list('images', /\.(jpg|png)$/), ...list('eval', /\.jpg$/)].filter((path) => {
    const hash = createHash('sha256').update(readFileSync(path)).digest('hex');
    if (seen.has(hash)) return false;
    seen.add(hash);
    return true;
  });
}

describeUpstream('int8', 'int8 graphs (onnxruntime dynamic quantization by the exporter) of the tiny models', () => {
  let summary: Int8Summary;
  const blipReference = readReference<BlipReference>('tiny-blip');
  const vleReference = readReference<VleReference>('tiny-vle');

  beforeAll(() => {
    summary = readUpstreamJson<Int8Summary>('int8', 'summary.json');
  });

  describe.each(Object.keys(MODELS))('%s', (model) => {
    it('should list an int8 variant of every graph in the manifest, smaller than the fp32 graph', () => {
      const manifest = readManifest(model);
      expect(Object.keys(manifest.graphs).length).toBeGreaterThan(1);
      for (const [name, graph] of Object.entries(manifest.graphs)) {
        const int8 = graph.variants?.int8;
        expect(int8, name).toBe(graph.file.replace(/\.onnx$/, '.int8.onnx'));
        const bytes = { fp32: statSync(join(folderOf(model), graph.file)).size, int8: statSync(join(folderOf(model), int8!)).size };
        expect(manifest.files[int8!]!.bytes, name).toBe(bytes.int8);
        console.info(`${model} ${name}: fp32 ${bytes.fp32} bytes, int8 ${bytes.int8} (${((100 * bytes.int8) / bytes.fp32).toFixed(0)}%)`);
        expect(bytes.int8, name).toBeLessThan(bytes.fp32);
      }
    });

    it('should hold quantized ops in the int8 graphs and none in the fp32 graphs', () => {
      const manifest = readManifest(model);
      for (const [name, graph] of Object.entries(manifest.graphs)) {
        // Op types are plain strings in the protobuf: present in the file if and only if some node (or name) uses them.
        const fp32 = readFileSync(join(folderOf(model), graph.file)).toString('latin1');
        const int8 = readFileSync(join(folderOf(model), graph.variants!.int8!)).toString('latin1');
        for (const op of QUANTIZED_OPS) expect(fp32.includes(op), `${name} fp32 ${op}`).toBe(false);
        expect(int8.includes('MatMulInteger'), `${name} int8 MatMulInteger`).toBe(true);
        expect(int8.includes('DynamicQuantizeLinear'), `${name} int8 DynamicQuantizeLinear`).toBe(true);
        if (/^(vision|image)Encoder$/.test(name)) expect(int8.includes('ConvInteger'), `${name} int8 ConvInteger (patch embedding)`).toBe(true);

        // onnx's reading of the same graphs: every product with a stored weight became a MatMulInteger, except the
        // ones whose weight reaches them through an Identity, which onnxruntime's quantizer leaves in float.
        const counts = summary.models[model]!.graphs[name]!;
        expect(counts.fp32.file).toBe(graph.file);
        expect(counts.int8.ops.MatMulInteger, name).toBe(counts.fp32.weightProducts.direct);
        expect(counts.int8.weightProducts.direct, name).toBe(0);
        expect(counts.int8.weightProducts.viaIdentity, name).toBe(counts.fp32.weightProducts.viaIdentity);
        expect(counts.fp32.weightProducts.viaIdentity, name).toBeLessThanOrEqual(counts.fp32.weightProducts.direct / 10);
      }
    });

    it("should load the int8 files with the runtime's int8 option, the fp32 files without it", async () => {
      const kind = MODELS[model as keyof typeof MODELS];
      const manifest = readManifest(model);
      const [quantized, plain] = await Promise.all([loadModelFolder(folderOf(model), kind, { quantized: true }), loadModelFolder(folderOf(model), kind)]);
      for (const [name, graph] of Object.entries(manifest.graphs)) {
        expect(quantized.spec.graphs[name]!.path, name).toBe(join(folderOf(model), graph.variants!.int8!));
        expect(plain.spec.graphs[name]!.path, name).toBe(join(folderOf(model), graph.file));
      }
      expect(quantized.spec.key).not.toBe(plain.spec.key);
      // A folder exported without --int8 runs its fp32 graphs under the int8 option.
      const committed = await loadModelFolder(model === 'tiny-blip' ? tinyBlip : tinyVle, kind, { quantized: true });
      for (const graph of Object.values(committed.spec.graphs)) expect(graph.path.endsWith('.int8.onnx')).toBe(false);
    });
  });

  it('should keep every BLIP graph within tolerance of fp32, and run as onnxruntime Python runs it', async () => {
    const [vision, cross, decoder] = await Promise.all([graphPair('tiny-blip', 'visionEncoder'), graphPair('tiny-blip', 'crossAttentionCache'), graphPair('tiny-blip', 'textDecoder')]);
    try {
      const errors = { visionEncoder: 0, crossAttentionCache: 0, textDecoder: 0 };
      for (const [index, input] of blipReference.inputs.entries()) {
        const pixels = await runPair(vision, { pixel_values: float(input.pixelValues) });
        errors.visionEncoder = Math.max(errors.visionEncoder, relativeError(pixels.fp32, pixels.int8));
        if (index === 0) {
          const { image_embeds } = await vision.int8.run({ pixel_values: float(input.pixelValues) });
          const python = summary.models['tiny-blip']!.pythonInt8.visionEncoder!;
          expect(image_embeds!.dims).toEqual(python.dims);
          const nodePython = maxAbsDifference(image_embeds!.data as Float32Array, python.data);
          console.info(`tiny-blip visionEncoder int8: Node against onnxruntime Python max |diff| ${nodePython.toExponential(2)}`);
          expect(nodePython).toBeLessThan(NODE_PYTHON_TOLERANCE);
        }
        const embeds = { image_embeds: float(input.imageEmbeds) };
        const keysValues = await runPair(cross, embeds);
        errors.crossAttentionCache = Math.max(errors.crossAttentionCache, relativeError(keysValues.fp32, keysValues.int8));
        // Teacher-forced: the reference's greedy caption of this input, every position at once, with fp32 cross
        // keys and values on both sides so that only the decoder's own quantization counts.
        const caption = blipReference.generation.find((entry) => entry.input === index && entry.name === 'greedy') ?? blipReference.generation.find((entry) => entry.input === index)!;
        const crossFeeds = await cross.fp32.run(embeds);
        const logits = await runPair(decoder, { ...crossFeeds, ...emptyPast('tiny-blip'), input_ids: int64([...caption.promptIds, ...caption.tokenIds]) }, ['logits']);
        errors.textDecoder = Math.max(errors.textDecoder, relativeError(logits.fp32, logits.int8));
      }
      console.info(`tiny-blip int8 against fp32, relative L2 error: ${JSON.stringify(errors, (_key, value: unknown) => (typeof value === 'number' ? Number(value.toPrecision(3)) : value))}`);
      for (const [name, error] of Object.entries(errors)) {
        expect(error, name).toBeGreaterThan(0); // the int8 graph did run
        expect(error, name).toBeLessThan(GRAPH_TOLERANCE[name]!);
      }
    } finally {
      await Promise.all([vision.dispose(), cross.dispose(), decoder.dispose()]);
    }
  });

  it('should keep every VLE graph within tolerance of fp32, and run as onnxruntime Python runs it', async () => {
    const [encoder, fusion] = await Promise.all([graphPair('tiny-vle', 'imageEncoder'), graphPair('tiny-vle', 'fusion')]);
    try {
      const errors = { imageEncoder: 0, fusion: 0 };
      for (const input of vleReference.inputs) {
        const embeds = await runPair(encoder, { pixel_values: float(input.pixelValues) });
        errors.imageEncoder = Math.max(errors.imageEncoder, relativeError(embeds.fp32, embeds.int8));
      }
      for (const testCase of vleReference.cases) {
        const logits = await runPair(fusion, {
          input_ids: int64(testCase.inputIds),
          attention_mask: int64(testCase.attentionMask),
          image_embeds: float(vleReference.inputs[testCase.input]!.imageEmbeds),
        });
        errors.fusion = Math.max(errors.fusion, relativeError(logits.fp32, logits.int8));
      }
      console.info(`tiny-vle int8 against fp32, relative L2 error: ${JSON.stringify(errors, (_key, value: unknown) => (typeof value === 'number' ? Number(value.toPrecision(3)) : value))}`);
      for (const [name, error] of Object.entries(errors)) {
        expect(error, name).toBeGreaterThan(0);
        expect(error, name).toBeLessThan(GRAPH_TOLERANCE[name]!);
      }

      const python = summary.models['tiny-vle']!.pythonInt8;
      const first = vleReference.inputs[0]!;
      const { image_embeds } = await encoder.int8.run({ pixel_values: float(first.pixelValues) });
      const testCase = vleReference.cases.find((entry) => entry.input === 0 && entry.question === python.fusion!.question)!;
      const { logits } = await fusion.int8.run({ input_ids: int64(testCase.inputIds), attention_mask: int64(testCase.attentionMask), image_embeds: float(first.imageEmbeds) });
      const differences = [maxAbsDifference(image_embeds!.data as Float32Array, python.imageEncoder!.data), maxAbsDifference(logits!.data as Float32Array, python.fusion!.data)];
      console.info(`tiny-vle int8: Node against onnxruntime Python max |diff| imageEncoder ${differences[0]!.toExponential(2)}, fusion ${differences[1]!.toExponential(2)}`);
      for (const difference of differences) expect(difference).toBeLessThan(NODE_PYTHON_TOLERANCE);
    } finally {
      await Promise.all([encoder.dispose(), fusion.dispose()]);
    }
  });

  describe('end to end through the runtime (int8 option against fp32, every committed photo)', () => {
    let captioners: { fp32: BlipCaptioner; int8: BlipCaptioner };
    let vqas: { fp32: VleVqa; int8: VleVqa };
    beforeAll(async () => {
      const [blip32, blip8, vle32, vle8] = await Promise.all([
        BlipCaptioner.load(folderOf('tiny-blip'), { workers: 0 }),
        BlipCaptioner.load(folderOf('tiny-blip'), { workers: 0, quantized: true }),
        VleVqa.load(folderOf('tiny-vle'), { workers: 0 }),
        VleVqa.load(folderOf('tiny-vle'), { workers: 0, quantized: true }),
      ]);
      captioners = { fp32: blip32, int8: blip8 };
      vqas = { fp32: vle32, int8: vle8 };
    });
    afterAll(async () => {
      await Promise.all([captioners?.fp32.dispose(), captioners?.int8.dispose(), vqas?.fp32.dispose(), vqas?.int8.dispose()]);
    });

    it('should answer with scores within tolerance of fp32 for every label', async () => {
      const questions = [...new Set(vleReference.cases.map((entry) => entry.question))].filter((question) => question.length < 80);
      const labels = vqas.fp32.answers.length;
      let worst = 0;
      let sameTop1 = 0;
      let cases = 0;
      for (const image of images()) {
        for (const question of questions) {
          const [fp32, int8] = await Promise.all([vqas.fp32.candidates(image, question, { topK: labels }), vqas.int8.candidates(image, question, { topK: labels })]);
          const scores = new Map(int8.candidates.map((entry) => [entry.answer, entry.score]));
          for (const entry of fp32.candidates) worst = Math.max(worst, Math.abs(entry.score - scores.get(entry.answer)!));
          if (fp32.candidates[0]!.answer === int8.candidates[0]!.answer) sameTop1 += 1;
          cases += 1;
        }
      }
      console.info(`tiny-vle end to end: ${cases} cases, max |score difference| ${worst.toExponential(2)}, same top-1 ${sameTop1}/${cases}`);
      expect(cases).toBeGreaterThanOrEqual(25);
      expect(worst).toBeGreaterThan(0);
      expect(worst).toBeLessThan(SCORE_TOLERANCE);
    });

    it('should caption every photo with the int8 graphs (agreement with fp32 reported)', async () => {
      let identical = 0;
      const list = images();
      for (const image of list) {
        const [fp32, int8] = await Promise.all([captioners.fp32.caption(image, { numBeams: 1 }), captioners.int8.caption(image, { numBeams: 1 })]);
        expect(int8.cached).toBe(false);
        expect(int8.tokenIds.length).toBeGreaterThan(0);
        expect(typeof int8.caption).toBe('string');
        if (JSON.stringify(fp32.tokenIds) === JSON.stringify(int8.tokenIds)) identical += 1;
      }
      console.info(`tiny-blip end to end: greedy caption identical for ${identical}/${list.length} photos`);
    });
  });
});
