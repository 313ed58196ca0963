// The converter on upstream-format checkpoints (random weights, saved as the hub holds them) against the Python
// exporter's folders for the same checkpoints: models/vqa_llm_upstream/convert.py writes the checkpoints, the
// templates made by the exporter's graph code, the exporter's folders and their graph outputs on fixed inputs
// (reference.json). Node converts each checkpoint; its graphs must give the same outputs within 1e-5, the runtime the
// same greedy and beam caption ids and top-k answers, and the folder the same config, preprocessing, generation and
// tokenizer files. The bad checkpoints must fail with the typed error that names what is wrong.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../dist/src/convert/index.js';
import { ConversionError } from '../../dist/src/errors/conversion-error.js';
import { checkModelFolder, type ModelManifest } from '../../dist/src/models/manifest.js';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { OnnxGraph, type TensorData } from '../../dist/src/runtime/onnx-session.js';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import { fixtureImage, maxAbsDifference, root } from '../helpers/fixtures.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from '../upstream/upstream-output.js';

const TOLERANCE = 1e-5;

interface ConvertCase {
  name: string;
  family: 'blip' | 'vle';
  template: string;
  checkpoint: string;
  model?: string;
  reference?: string;
  expect: 'ok' | { error: 'structural'; template: string; differs: Record<string, [unknown, unknown]> } | { error: 'unexpected-key' | 'missing-key'; key: string };
}

interface ReferenceTensor {
  dtype: 'float32' | 'int64';
  dims: number[];
  data: number[];
}

interface CaseReference {
  case: string;
  template: string;
  variables: Record<string, number>;
  graphs: Record<string, { inputs: Record<string, ReferenceTensor>; outputs: Record<string, ReferenceTensor> }>;
}

const toTensorData = (tensor: ReferenceTensor): TensorData =>
  tensor.dtype === 'int64'
    ? { type: 'int64', data: BigInt64Array.from(tensor.data, (value) => BigInt(value)), dims: tensor.dims }
    : { type: 'float32', data: Float32Array.from(tensor.data), dims: tensor.dims };

const readJson = async (file: string): Promise<unknown> => JSON.parse(await readFile(file, 'utf8'));

/** The JSON files a folder holds besides the manifest and the graphs. */
const SIDE_FILES = ['config.json', 'preprocessor_config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'];
const QUESTIONS = ['What is in the picture?', 'how many fish are there', 'Is it raining? Answer yes or no.'];

describeUpstream('convert', 'convertCheckpoint on upstream-format checkpoints against the Python exporter', () => {
  const cases = readUpstreamJsonSafe();
  const templates = upstreamPath('convert', 'templates');
  let scratch: string;
  const measured: Record<string, number> = {};

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'vqa-llm-upstream-convert-'));
  });
  afterAll(async () => {
    console.info(`converted folders against the exporter's, max |diff| of graph outputs: ${JSON.stringify(measured)}`);
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  for (const testCase of cases.filter((entry) => entry.expect === 'ok')) {
    describe(`${testCase.name} (${testCase.family}, template ${testCase.template})`, () => {
      const checkpoint = upstreamPath('convert', testCase.checkpoint);
      const exported = upstreamPath('convert', testCase.model!);
      let out: string;
      let manifest: ModelManifest;
      let exportedManifest: ModelManifest;
      let reference: CaseReference;

      beforeAll(async () => {
        out = path.join(scratch, testCase.name);
        reference = readUpstreamJson<CaseReference>('convert', testCase.reference!);
        exportedManifest = (await readJson(path.join(exported, 'vqa-llm.json'))) as ModelManifest;
        manifest = await convertCheckpoint({ checkpoint, out, templates, name: testCase.name, source: { checkpoint, revision: 'random-init' } });
      });

      it('should write a folder whose manifest checks out and lists the graphs as the exporter does', async () => {
        await checkModelFolder(out, { verifyChecksums: true });
        expect(manifest.kind).toBe(exportedManifest.kind);
        expect(manifest.exporter).toMatchObject({ name: 'vqa-llm-convert', template: testCase.template });
        for (const [key, graph] of Object.entries(exportedManifest.graphs)) {
          expect(manifest.graphs[key], key).toEqual({ file: graph.file, inputs: graph.inputs, outputs: graph.outputs });
          expect(manifest.files[`${graph.file}.data`], key).toBeDefined();
        }
        expect(Object.keys(manifest.graphs)).toEqual(Object.keys(exportedManifest.graphs));
      });

      it("should give the exporter's graph outputs within 1e-5", async () => {
        for (const [key, graphReference] of Object.entries(reference.graphs)) {
          const graph = await OnnxGraph.create(path.join(out, manifest.graphs[key]!.file), { name: key, ...manifest.graphs[key]! });
          try {
            const feeds = Object.fromEntries(Object.entries(graphReference.inputs).map(([name, tensor]) => [name, toTensorData(tensor)]));
            const outputs = await graph.run(feeds);
            for (const [name, expected] of Object.entries(graphReference.outputs)) {
              expect(outputs[name]!.dims, `${key}.${name}`).toEqual(expected.dims);
              const difference = maxAbsDifference(outputs[name]!.data as Float32Array, expected.data);
              measured[testCase.name] = Math.max(measured[testCase.name] ?? 0, difference);
              expect(difference, `${key}.${name}`).toBeLessThan(TOLERANCE);
            }
          } finally {
            await graph.dispose();
          }
        }
      });

      it('should write the config, preprocessing, generation and tokenizer files the exporter writes', async () => {
        const expectedFiles = SIDE_FILES.filter((file) => file in exportedManifest.files);
        expect(SIDE_FILES.filter((file) => file in manifest.files)).toEqual(expectedFiles);
        for (const file of expectedFiles) {
          expect(await readJson(path.join(out, file)), file).toEqual(await readJson(path.join(exported, file)));
        }
        const otherFiles = (files: Record<string, unknown>) => Object.keys(files).filter((file) => !file.startsWith('onnx/')).sort();
        expect(otherFiles(manifest.files)).toEqual(otherFiles(exportedManifest.files));
      });

      if (testCase.family === 'blip') {
        it("should caption like the exporter's folder (greedy, beam search, with a prefix)", async () => {
          const [converted, original] = await Promise.all([BlipCaptioner.load(out, { workers: 0 }), BlipCaptioner.load(exported, { workers: 0 })]);
          try {
            for (const image of ['fishing.jpg', 'truck.jpg']) {
              for (const options of [{}, { numBeams: 3 }, { prefix: 'a picture of' }]) {
                const [got, want] = await Promise.all([converted.caption(fixtureImage(image), options), original.caption(fixtureImage(image), options)]);
                expect(got.tokenIds, `${image} ${JSON.stringify(options)}`).toEqual(want.tokenIds);
                expect(got.caption).toBe(want.caption);
              }
            }
          } finally {
            await Promise.all([converted.dispose(), original.dispose()]);
          }
        });
      } else {
        it("should give the exporter's folder's top-k answers", async () => {
          const [converted, original] = await Promise.all([VleVqa.load(out, { workers: 0 }), VleVqa.load(exported, { workers: 0 })]);
          try {
            expect(converted.answers).toEqual(original.answers);
            for (const image of ['fishing.jpg', 'truck.jpg']) {
              for (const question of QUESTIONS) {
                const [got, want] = await Promise.all([
                  converted.candidates(fixtureImage(image), question, { topK: 5 }),
                  original.candidates(fixtureImage(image), question, { topK: 5 }),
                ]);
                expect(got.candidates.map((candidate) => candidate.answer), `${image} ${question}`).toEqual(want.candidates.map((candidate) => candidate.answer));
                const scores = maxAbsDifference(
                  got.candidates.map((candidate) => candidate.score),
                  want.candidates.map((candidate) => candidate.score),
                );
                expect(scores).toBeLessThan(TOLERANCE);
              }
            }
          } finally {
            await Promise.all([converted.dispose(), original.dispose()]);
          }
        });
      }
    });
  }

  for (const testCase of cases.filter((entry) => entry.expect !== 'ok')) {
    it(`should refuse ${testCase.name} with the error that names what is wrong`, async () => {
      const expected = testCase.expect as Exclude<ConvertCase['expect'], 'ok'>;
      const checkpoint = upstreamPath('convert', testCase.checkpoint);
      const out = path.join(scratch, testCase.name);
      let error: ConversionError | undefined;
      try {
        await convertCheckpoint({ checkpoint, out, templates });
      } catch (caught) {
        error = caught as ConversionError;
      }
      expect(ConversionError.isInstance(error)).toBe(true);
      if (expected.error === 'structural') {
        expect(error!.reason).toBe('no_template');
        expect(error!.message).toContain(expected.template);
        const differences = Object.fromEntries((error!.differences ?? []).map((entry) => [entry.path, [entry.checkpoint, entry.template]]));
        expect(differences).toEqual(expected.differs);
        for (const pathName of Object.keys(expected.differs)) expect(error!.message).toContain(pathName);
        expect(error!.message).toContain(`python models/export.py ${testCase.family} --checkpoint ${checkpoint}`);
      } else {
        expect(error!.reason).toBe(expected.error === 'unexpected-key' ? 'unexpected_key' : 'missing_key');
        expect(error!.key).toBe(expected.key);
        expect(error!.file).toMatch(/model\.safetensors|pytorch_model\.bin/);
        expect(error!.message).toContain(expected.key);
      }
      await expect(readFile(path.join(out, 'vqa-llm.json'))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  }

  it('should convert a .bin checkpoint without tokenizer.json in a process with no python3 on its PATH', async () => {
    const testCase = cases.find((entry) => entry.expect === 'ok' && entry.family === 'blip' && entry.checkpoint.includes('bin')) ?? cases.find((entry) => entry.expect === 'ok')!;
    const out = path.join(scratch, 'no-python');
    const script = `
      import { convertCheckpoint } from ${JSON.stringify(path.join(root, 'dist', 'src', 'convert', 'index.js'))};
      const manifest = await convertCheckpoint({ checkpoint: process.argv[1], out: process.argv[2], templates: process.argv[3] });
      console.log(JSON.stringify(Object.keys(manifest.files)));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, upstreamPath('convert', testCase.checkpoint), out, templates], {
      env: { PATH: path.dirname(process.execPath) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, output).toBe(0);
    expect(JSON.parse(output)).toContain('tokenizer.json');
    await checkModelFolder(out, { verifyChecksums: true });
  });
});

/** cases.json, or no cases when the part is absent (describeUpstream then skips or fails the suite). */
function readUpstreamJsonSafe(): ConvertCase[] {
  try {
    return readUpstreamJson<ConvertCase[]>('convert', 'cases.json');
  } catch {
    return [];
  }
}
