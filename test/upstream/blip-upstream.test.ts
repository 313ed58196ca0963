// The runtime against transformers' BlipForConditionalGeneration itself (models/vqa_llm_upstream/blip.py): random
// weights saved as the hub saves them, exported by `models/export.py blip`, and transformers' own outputs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImage } from '../../dist/src/image/load-image.js';
import { preprocessImage } from '../../dist/src/image/preprocess.js';
import { parsePreprocessorConfig } from '../../dist/src/image/preprocessor-config.js';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { OnnxGraph } from '../../dist/src/runtime/onnx-session.js';
import { maxAbsDifference, root, toTensor, type TensorJson } from '../helpers/fixtures.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from './upstream-output.js';

interface BlipUpstreamReference {
  variant: string;
  tieWordEmbeddings: boolean;
  separateHead: boolean;
  weightsFormat: string;
  images: { image: string; pixelValues: TensorJson; imageEmbeds: TensorJson; firstStepLogits: TensorJson }[];
  generation: { name: string; input: number; options: Record<string, number | string>; promptIds: number[]; tokenIds: number[]; text: string }[];
}

const VARIANTS = ['tied', 'untied', 'stored-head'] as const;

interface Manifest {
  graphs: Record<string, { file: string; inputs: { name: string; shape: (number | string)[] }[]; outputs: { name: string }[] }>;
}

describeUpstream('blip', 'BLIP against transformers (random weights, exported from a save_pretrained checkpoint)', () => {
  describe.each(VARIANTS)('%s checkpoint', (variant) => {
    const folder = upstreamPath('blip', variant, 'model');
    let reference: BlipUpstreamReference;
    let manifest: Manifest;
    let captioner: BlipCaptioner;

    beforeAll(async () => {
      reference = readUpstreamJson<BlipUpstreamReference>('blip', variant, 'reference.json');
      manifest = JSON.parse(readFileSync(join(folder, 'vqa-llm.json'), 'utf8')) as Manifest;
      captioner = await BlipCaptioner.load(folder, { workers: 0 });
    });
    afterAll(async () => {
      await captioner?.dispose();
    });

    it("should reproduce BlipProcessor's pixel values from the image files", async () => {
      const config = parsePreprocessorConfig(JSON.parse(readFileSync(join(folder, 'preprocessor_config.json'), 'utf8')), 'preprocessor_config.json');
      for (const entry of reference.images) {
        const tensor = await preprocessImage(await loadImage(join(root, entry.image)), config);
        expect(tensor.dims).toEqual(entry.pixelValues.dims);
        // One 8-bit level is 1/255/0.27 ≈ 0.015: this bound says every pixel went through the same resize.
        const difference = maxAbsDifference(tensor.data, entry.pixelValues.data);
        console.info(`blip ${variant} ${entry.image}: pixel values max |diff| ${difference.toExponential(2)}`);
        expect(difference, entry.image).toBeLessThan(1e-5);
      }
    });

    it("should reproduce the vision model's output and the first decoding step's logits", async () => {
      const graph = (key: string) => OnnxGraph.create(join(folder, manifest.graphs[key]!.file), { name: key, ...manifest.graphs[key]! } as never);
      const vision = await graph('visionEncoder');
      const cross = await graph('crossAttentionCache');
      const decoder = await graph('textDecoder');
      try {
        const bos = reference.generation.find((entry) => entry.name === 'greedy')!.promptIds;
        for (const entry of reference.images) {
          const pixels = toTensor(entry.pixelValues);
          const { image_embeds } = await vision.run({ pixel_values: { type: 'float32', data: pixels.data, dims: pixels.dims } });
          expect(image_embeds!.dims).toEqual(entry.imageEmbeds.dims);
          const embedsDifference = maxAbsDifference(image_embeds!.data as Float32Array, entry.imageEmbeds.data);
          expect(embedsDifference, entry.image).toBeLessThan(1e-4);

          const crossOutputs = await cross.run({ image_embeds: image_embeds! });
          const feeds: Record<string, unknown> = { ...crossOutputs, input_ids: { type: 'int64', data: BigInt64Array.from(bos.map(BigInt)), dims: [1, 1] } };
          for (const input of manifest.graphs.textDecoder!.inputs.filter((spec) => spec.name.startsWith('past_'))) {
            const [, heads, , headDim] = input.shape as number[];
            feeds[input.name] = { type: 'float32', data: new Float32Array(0), dims: [1, heads!, 0, headDim!] };
          }
          const { logits } = await decoder.run(feeds as never);
          const logitsDifference = maxAbsDifference(logits!.data as Float32Array, entry.firstStepLogits.data);
          console.info(`blip ${variant} ${entry.image}: vision output max |diff| ${embedsDifference.toExponential(2)}, first-step logits ${logitsDifference.toExponential(2)}`);
          expect(logitsDifference, entry.image).toBeLessThan(1e-4);
        }
      } finally {
        await Promise.all([vision.dispose(), cross.dispose(), decoder.dispose()]);
      }
    });

    it("should generate transformers' token ids and text for every case (greedy, beam, prefix, repetition, defaults)", async () => {
      expect(reference.generation.length).toBeGreaterThan(5);
      for (const testCase of reference.generation) {
        const label = `${variant} ${testCase.name} ${JSON.stringify(testCase.options)}`;
        expect(captioner.promptIds(testCase.options.prefix as string | undefined), label).toEqual(testCase.promptIds);
        const pixels = toTensor(reference.images[testCase.input]!.pixelValues);
        const result = await captioner.captionPixels(pixels, testCase.options);
        expect(result.tokenIds, label).toEqual(testCase.tokenIds);
        expect(result.caption, label).toBe(testCase.text);
      }
    });
  });

  it('should have exported the stored output layer where transformers keeps it, and the embeddings where it ties', () => {
    const references = VARIANTS.map((variant) => readUpstreamJson<BlipUpstreamReference>('blip', variant, 'reference.json'));
    expect(references.map((entry) => [entry.variant, entry.tieWordEmbeddings, entry.separateHead, entry.weightsFormat])).toEqual([
      ['tied', true, false, 'safetensors'],
      ['untied', false, true, 'bin'],
      ['stored-head', true, true, 'safetensors'],
    ]);
  });
});
