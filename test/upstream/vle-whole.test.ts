// VLE as a whole against iflytek/VLE's own code: test/fixtures/upstream/vle-small holds a small random-weight
// checkpoint saved as the hub has hfl/vle-base-for-vqa, and what upstream's VLEProcessor, VLEForVQA and
// VLEForVQAPipeline (commit e322bb97) gave for it on the test images (models/vqa_llm_upstream/vle_reference.py, run
// by hand; the upstream code is never part of the repository). The vle_whole part (vle_whole.py) exports that
// checkpoint with the project's exporter; here the runtime must reproduce upstream's pixel values, input ids,
// logits and top-5 answers, long questions included (the pipeline runs them whole).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImage } from '../../dist/src/image/load-image.js';
import { preprocessImage } from '../../dist/src/image/preprocess.js';
import { loadModelFolder, type LoadedModelFolder } from '../../dist/src/runtime/model-loader.js';
import { handleTask, releaseModels } from '../../dist/src/runtime/task-handler.js';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import type { VqaTaskResult } from '../../dist/src/runtime/worker-protocol.js';
import { maxAbsDifference, root, toTensor, type TensorJson } from '../helpers/fixtures.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from './upstream-output.js';

interface VleWholeReference {
  model: string;
  upstream: { repository: string; commit: string; classes: string[] };
  versions: Record<string, string>;
  checkpoint: string;
  seed: number;
  smallestTop5Gap: number;
  images: { image: string; pixelValues: TensorJson }[];
  cases: { image: number; question: string; inputIds: number[]; attentionMask: number[]; logits: number[]; topK: { answer: string; score: number }[] }[];
}

// Measured on the committed fixture (onnxruntime-node 1.30.0, x86-64, 2 cores): pixel values 5.0e-9 (the same
// PIL-exact bicubic resize; float rounding in the normalisation), logits 3.8e-6 (float32 rounding; the exported graphs
// under Python's onnxruntime differ from upstream by as much), top-5 scores 6.4e-7.
const PIXEL_TOLERANCE = 1e-5;
const LOGIT_TOLERANCE = 5e-5;
const SCORE_TOLERANCE = 1e-5;
const FINE_TUNING_TOKENS = 50;

// The committed references name the tests (they exist without the generated part); the part's copy is checked to
// be the same file and is what the tests compare with.
const committed = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'upstream', 'vle-small', 'reference.json'), 'utf8')) as VleWholeReference;
const label = (question: string): string => JSON.stringify(question.length > 50 ? `${question.slice(0, 47)}...` : question);

describeUpstream('vle_whole', "VLE as a whole against iflytek/VLE's VLEForVQA and VLEForVQAPipeline", () => {
  let reference: VleWholeReference;
  let folder: LoadedModelFolder;
  let vqa: VleVqa;
  const measured = { pixels: 0, logits: 0, scores: 0 };

  beforeAll(async () => {
    reference = readUpstreamJson<VleWholeReference>('vle_whole', 'reference.json');
    folder = await loadModelFolder(upstreamPath('vle_whole', 'model'), 'vle-vqa');
    vqa = await VleVqa.load(upstreamPath('vle_whole', 'model'), { workers: 1 });
  });

  afterAll(async () => {
    console.info(
      `vle_whole max |diff| against upstream: pixel values ${measured.pixels.toExponential(2)}, ` +
        `logits ${measured.logits.toExponential(2)}, top-5 scores ${measured.scores.toExponential(2)}`,
    );
    await vqa?.dispose();
    if (folder) await releaseModels([folder.spec.key]);
  });

  /** The runtime's fusion logits (the task the inference workers run), from given pixel values and ids. */
  async function runtimeLogits(pixelValues: TensorJson, inputIds: number[], attentionMask: number[]): Promise<Float32Array> {
    const { data, dims } = toTensor(pixelValues);
    const result = (await handleTask({
      type: 'vqa',
      model: folder.spec,
      pixelValues: { type: 'float32', data, dims },
      inputIds,
      attentionMask,
    })) as VqaTaskResult;
    return result.logits;
  }

  it('should be checked against the committed references of iflytek/VLE e322bb97, long questions included', () => {
    expect(reference).toEqual(committed);
    expect(reference.upstream.commit).toBe('e322bb97b4ecd2c1eed11959416aed640a4bf76a');
    expect(reference.cases.some((entry) => entry.inputIds.length > FINE_TUNING_TOKENS)).toBe(true);
    expect(reference.cases.some((entry) => entry.inputIds.length > 200)).toBe(true);
    expect(folder.manifest.source?.checkpoint).toBe(reference.checkpoint);
    expect(vqa.answers.length).toBe(reference.cases[0]!.logits.length);
  });

  committed.images.forEach(({ image }, index) => {
    it(`should preprocess ${image} into the pixel values of upstream's processor`, async () => {
      const expected = reference.images[index]!.pixelValues;
      const pixels = await preprocessImage(await loadImage(join(root, image)), folder.preprocessor);
      expect([...pixels.dims]).toEqual(expected.dims);
      const difference = maxAbsDifference(pixels.data, expected.data);
      measured.pixels = Math.max(measured.pixels, difference);
      expect(difference).toBeLessThan(PIXEL_TOLERANCE);
    });
  });

  committed.cases.forEach((entry, index) => {
    describe(`case ${index}: ${label(entry.question)} (${entry.inputIds.length} tokens, image ${entry.image})`, () => {
      const testCase = () => reference.cases[index]!;

      it("should tokenize the question into upstream's input_ids", () => {
        const { question, inputIds, attentionMask } = testCase();
        expect(attentionMask).toEqual(inputIds.map(() => 1));
        expect(vqa.tokenize(question)).toEqual(inputIds);
      });

      it("should give upstream's logits from upstream's pixel values and input_ids", async () => {
        const { image, inputIds, attentionMask, logits } = testCase();
        const got = await runtimeLogits(reference.images[image]!.pixelValues, inputIds, attentionMask);
        expect(got.length).toBe(logits.length);
        const difference = maxAbsDifference(got, logits);
        measured.logits = Math.max(measured.logits, difference);
        expect(difference).toBeLessThan(LOGIT_TOLERANCE);
      });

      it("should give the pipeline's top-5 answers and scores from the image file and the question", async () => {
        const { image, question, topK } = testCase();
        const { candidates } = await vqa.candidates(join(root, reference.images[image]!.image), question, { topK: topK.length });
        expect(candidates.map((candidate) => candidate.answer)).toEqual(topK.map((entry) => entry.answer));
        const difference = Math.max(...candidates.map((candidate, rank) => Math.abs(candidate.score - topK[rank]!.score)));
        measured.scores = Math.max(measured.scores, difference);
        expect(difference).toBeLessThan(SCORE_TOLERANCE);
      });
    });
  });
});
