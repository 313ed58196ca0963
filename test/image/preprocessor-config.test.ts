import { describe, expect, it } from 'vitest';

import { ModelIntegrityError } from '../../dist/src/errors/index.js';
import { parsePreprocessorConfig } from '../../dist/src/image/preprocessor-config.js';

const vle = {
  image_processor_type: 'CLIPImageProcessor',
  do_convert_rgb: true,
  do_resize: true,
  size: { shortest_edge: 576 },
  resample: 3,
  do_center_crop: true,
  crop_size: { height: 576, width: 576 },
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
};

function parseError(json: unknown): ModelIntegrityError {
  try {
    parsePreprocessorConfig(json, 'models/x/preprocessor_config.json');
  } catch (error) {
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    return error as ModelIntegrityError;
  }
  throw new Error('expected parsePreprocessorConfig to throw');
}

describe('parsePreprocessorConfig', () => {
  it('should convert every snake_case key to camelCase', () => {
    expect(parsePreprocessorConfig(vle, 'preprocessor_config.json')).toEqual({
      doConvertRgb: true,
      doResize: true,
      size: { shortestEdge: 576 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 576, width: 576 },
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.48145466, 0.4578275, 0.40821073],
      imageStd: [0.26862954, 0.26130258, 0.27577711],
    });
  });

  it('should read an exact height and width size', () => {
    expect(parsePreprocessorConfig({ ...vle, size: { height: 384, width: 384 } }, 'p.json').size).toEqual({ height: 384, width: 384 });
  });

  it.each(['do_convert_rgb', 'do_resize', 'size', 'resample', 'do_center_crop', 'crop_size', 'do_rescale', 'rescale_factor', 'do_normalize', 'image_mean', 'image_std'])(
    'should refuse a file without %s, naming the key and the file',
    (key) => {
      const json: Record<string, unknown> = { ...vle };
      delete json[key];
      const error = parseError(json);
      expect(error.reason).toBe('bad_manifest');
      expect(error.message).toContain(`"${key}"`);
      expect(error.message).toContain('models/x/preprocessor_config.json');
    },
  );

  it.each([
    ['do_resize', 'yes'],
    ['size', { shortest_edge: 576, longest_edge: 1000 }],
    ['size', { height: 384 }],
    ['size', 384],
    ['resample', 7],
    ['resample', 2.5],
    ['crop_size', { height: 0, width: 576 }],
    ['rescale_factor', -1],
    ['image_mean', [0.5, 0.5]],
    ['image_std', [0.5, 0, 0.5]],
    ['image_mean', [0.5, '0.5', 0.5]],
  ])('should refuse %s = %j', (key, value) => {
    const error = parseError({ ...vle, [key]: value });
    expect(error.message).toContain(`"${key}`);
  });

  it('should refuse something that is not an object', () => {
    expect(parseError([1, 2]).reason).toBe('bad_manifest');
  });
});
