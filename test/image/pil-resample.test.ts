import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { loadImage } from '../../dist/src/image/load-image.js';
import { resizeRgbLikePil } from '../../dist/src/image/pil-resample.js';

interface Reference {
  pillow: string;
  source: { width: number; height: number; rgb: string };
  cases: { resample: number; width: number; height: number; rgb: string }[];
  photos: { image: string; width: number; height: number; sha256: string }[];
}

// Written by test/fixtures/odd-images/make_pil_reference.py with Pillow.
const reference = JSON.parse(readFileSync('test/fixtures/odd-images/pil-reference.json', 'utf8')) as Reference;
const source = Buffer.from(reference.source.rgb, 'base64');
const { width: sourceWidth, height: sourceHeight } = reference.source;
const names: Record<number, string> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 3: 'bicubic', 4: 'box', 5: 'hamming' };

describe('resizeRgbLikePil', () => {
  it.each(reference.cases.map((c) => [names[c.resample], `${sourceWidth}x${sourceHeight} -> ${c.width}x${c.height}`, c] as const))(
    'should match Pillow bit for bit with %s, %s',
    (_name, _size, testCase) => {
      const full = { left: 0, top: 0, width: testCase.width, height: testCase.height };
      const ours = resizeRgbLikePil(source, sourceWidth, sourceHeight, testCase.width, testCase.height, testCase.resample, full);
      expect(Buffer.from(ours).equals(Buffer.from(testCase.rgb, 'base64'))).toBe(true);
    },
  );

  it('should compute a window equal to the same region of the full result', () => {
    const full = resizeRgbLikePil(source, sourceWidth, sourceHeight, 64, 40, 3, { left: 0, top: 0, width: 64, height: 40 });
    const window = { left: 13, top: 7, width: 20, height: 11 };
    const part = resizeRgbLikePil(source, sourceWidth, sourceHeight, 64, 40, 3, window);
    for (let y = 0; y < window.height; y++) {
      const start = ((window.top + y) * 64 + window.left) * 3;
      expect(Buffer.from(part.subarray(y * window.width * 3, (y + 1) * window.width * 3))).toEqual(Buffer.from(full.subarray(start, start + window.width * 3)));
    }
  });

  it('should refuse a window outside the result', () => {
    expect(() => resizeRgbLikePil(source, sourceWidth, sourceHeight, 10, 10, 3, { left: 5, top: 0, width: 6, height: 10 })).toThrow(RangeError);
  });

  // Decoding (sharp's libjpeg vs Pillow's) and resizing together, on the photos the models are tested with.
  it.each(reference.photos.map((p) => [p.image, `${p.width}x${p.height}`, p] as const))(
    'should reproduce Pillow decode + bicubic resize of %s to %s exactly',
    async (_image, _size, photo) => {
      const image = await loadImage(photo.image);
      const resized = resizeRgbLikePil(image.data, image.width, image.height, photo.width, photo.height, 3, { left: 0, top: 0, width: photo.width, height: photo.height });
      expect(createHash('sha256').update(resized).digest('hex')).toBe(photo.sha256);
    },
  );
});
