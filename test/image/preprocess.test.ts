import { existsSync, readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { loadImage } from '../../dist/src/image/load-image.js';
import { preprocessImage, resizeTarget } from '../../dist/src/image/preprocess.js';
import { parsePreprocessorConfig } from '../../dist/src/image/preprocessor-config.js';
import type { LoadedImage, PreprocessorConfig } from '../../dist/src/types.js';

const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

const blip: PreprocessorConfig = {
  doConvertRgb: true,
  doResize: true,
  size: { height: 384, width: 384 },
  resample: 3,
  doCenterCrop: false,
  cropSize: { height: 384, width: 384 },
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: CLIP_MEAN,
  imageStd: CLIP_STD,
};
const vle: PreprocessorConfig = { ...blip, size: { shortestEdge: 576 }, doCenterCrop: true, cropSize: { height: 576, width: 576 } };

function solid(width: number, height: number, rgb: [number, number, number]): LoadedImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i += 3) data.set(rgb, i);
  return { kind: 'loaded-image', data, width, height, format: 'png', hash: 'x', byteLength: 0 };
}

function at(tensor: { data: Float32Array; dims: readonly number[] }, channel: number, y: number, x: number): number {
  const [, , height, width] = tensor.dims as [number, number, number, number];
  return tensor.data[(channel * height + y) * width + x]!;
}

describe('preprocessImage', () => {
  it('should resize to the exact size of a height and width config', async () => {
    const tensor = await preprocessImage(solid(640, 480, [10, 20, 30]), blip);
    expect(tensor.dims).toEqual([1, 3, 384, 384]);
    expect(tensor.data).toBeInstanceOf(Float32Array);
    expect(tensor.data.length).toBe(3 * 384 * 384);
  });

  it('should resize the shortest edge and center crop', async () => {
    const tensor = await preprocessImage(solid(640, 480, [10, 20, 30]), vle);
    expect(tensor.dims).toEqual([1, 3, 576, 576]);
  });

  it('should truncate the long side as transformers does', () => {
    expect(resizeTarget(640, 480, { shortestEdge: 576 })).toEqual([768, 576]);
    expect(resizeTarget(368, 233, { shortestEdge: 576 })).toEqual([909, 576]); // 909.73
    expect(resizeTarget(233, 368, { shortestEdge: 576 })).toEqual([576, 909]);
    expect(resizeTarget(100, 100, { shortestEdge: 32 })).toEqual([32, 32]);
    expect(resizeTarget(10, 20, { height: 7, width: 5 })).toEqual([5, 7]);
  });

  // numpy float32, as written by make_pil_reference.py: 200/255 etc. through HF's rescale and normalize.
  it('should normalize a solid colour to the exact float32 values numpy computes', async () => {
    const reference = JSON.parse(readFileSync('test/fixtures/odd-images/pil-reference.json', 'utf8')) as { normalize: { values: number[] } };
    expect(reference.normalize.values).toEqual([1.12742280960083, -0.2513202726840973, -0.7692164778709412]);
    const tensor = await preprocessImage(solid(50, 30, [200, 100, 50]), blip);
    for (let channel = 0; channel < 3; channel++) {
      expect(at(tensor, channel, 0, 0)).toBe(reference.normalize.values[channel]);
      expect(at(tensor, channel, 383, 383)).toBe(reference.normalize.values[channel]);
    }
  });

  it('should leave values at 0..255 when rescale and normalize are off', async () => {
    const tensor = await preprocessImage(solid(4, 4, [255, 0, 7]), { ...blip, doRescale: false, doNormalize: false, size: { height: 2, width: 2 } });
    expect(Array.from(tensor.data)).toEqual([255, 255, 255, 255, 0, 0, 0, 0, 7, 7, 7, 7]);
  });

  it('should lay out channels first, rows before columns', async () => {
    // 2x1: a red pixel left of a blue one, no resize.
    const image: LoadedImage = { ...solid(2, 1, [0, 0, 0]), data: new Uint8Array([255, 0, 0, 0, 0, 255]) };
    const tensor = await preprocessImage(image, { ...blip, doResize: false, doRescale: false, doNormalize: false });
    expect(tensor.dims).toEqual([1, 3, 1, 2]);
    expect(Array.from(tensor.data)).toEqual([255, 0, 0, 0, 0, 255]);
  });

  it('should take the center crop at floor((size - crop) / 2)', async () => {
    // 5 wide: columns 0..4 valued 0,10,..,40; a crop of 2 starts at floor(3/2) = 1.
    const data = new Uint8Array(5 * 3);
    for (let x = 0; x < 5; x++) data.fill(x * 10, x * 3, x * 3 + 3);
    const tensor = await preprocessImage({ ...solid(5, 1, [0, 0, 0]), data }, { ...blip, doResize: false, doCenterCrop: true, cropSize: { height: 1, width: 2 }, doRescale: false, doNormalize: false });
    expect(Array.from(tensor.data.subarray(0, 2))).toEqual([10, 20]);
  });

  it('should pad a crop larger than the image with zeros before normalizing, as transformers does', async () => {
    const tensor = await preprocessImage(solid(3, 3, [255, 255, 255]), { ...blip, doResize: false, doCenterCrop: true, cropSize: { height: 6, width: 4 } });
    expect(tensor.dims).toEqual([1, 3, 6, 4]);
    const zero = Math.fround(Math.fround(0 - Math.fround(CLIP_MEAN[0])) / Math.fround(CLIP_STD[0]));
    const one = Math.fround(Math.fround(1 - Math.fround(CLIP_MEAN[0])) / Math.fround(CLIP_STD[0]));
    // transformers puts the image at top_pad = ceil((6 - 3) / 2) = 2, left_pad = ceil((4 - 3) / 2) = 1.
    const rows = [0, 1, 2, 3, 4, 5].map((y) => [0, 1, 2, 3].map((x) => (at(tensor, 0, y, x) === one ? 1 : at(tensor, 0, y, x) === zero ? 0 : NaN)));
    expect(rows).toEqual([
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 1, 1, 1],
      [0, 1, 1, 1],
      [0, 1, 1, 1],
      [0, 0, 0, 0],
    ]);
  });

  it('should keep memory to the crop for an extreme aspect ratio', async () => {
    // 32:1 at the limit: the resized image would be 18432x576; only the 576x576 crop is computed.
    const tensor = await preprocessImage(solid(3200, 100, [1, 2, 3]), vle);
    expect(tensor.dims).toEqual([1, 3, 576, 576]);
  });

  it('should refuse an image whose buffer does not match its size', async () => {
    await expect(preprocessImage({ ...solid(4, 4, [0, 0, 0]), width: 5 }, blip)).rejects.toThrow(/inconsistent/);
  });

  describe.each(['tiny-blip', 'tiny-vle'])('agreement with transformers + PIL (%s reference)', (model) => {
    const referencePath = `test/fixtures/reference/${model}.json`;
    const present = existsSync(referencePath);
    const reference = present
      ? (JSON.parse(readFileSync(referencePath, 'utf8')) as { preprocessing: { image: string; pixelValues: { dims: number[]; data: number[] } }[] })
      : { preprocessing: [] };
    const title = `should reproduce pixel_values of every image in ${referencePath}`;
    it.skipIf(!present)(present ? title : `${title} (skipped: the file does not exist yet; models/make_test_models.py writes it)`, async () => {
      const config = parsePreprocessorConfig(JSON.parse(readFileSync(`test/fixtures/models/${model}/preprocessor_config.json`, 'utf8')), `${model}/preprocessor_config.json`);
      expect(reference.preprocessing.length).toBeGreaterThan(0);
      for (const entry of reference.preprocessing) {
        const tensor = await preprocessImage(await loadImage(entry.image), config);
        expect(tensor.dims).toEqual(entry.pixelValues.dims);
        let max = 0;
        let sum = 0;
        for (let i = 0; i < tensor.data.length; i++) {
          const difference = Math.abs(tensor.data[i]! - entry.pixelValues.data[i]!);
          max = Math.max(max, difference);
          sum += difference;
        }
        console.info(`${model} ${entry.image}: max |diff| ${max.toExponential(2)}, mean ${(sum / tensor.data.length).toExponential(2)}`);
        // Same decoder output and a bit-exact PIL resize leave only float32 printing/rounding (< 1e-6);
        // one 8-bit level would be 1/255/0.2613 = 0.015, so this bound also proves no pixel is off by one.
        expect(max).toBeLessThan(1e-5);
      }
    });
  });
});
