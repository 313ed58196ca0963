// The ports of the exporter's config rules (models/vqa_llm_export/blip.py complete_config, preprocessor_config,
// generation_config; vle.py VLEConfig.to_export_dict, load_vle_checkpoint's image size, preprocessor_config) on the
// corner cases their Python handles. Whole folders are compared with the exporter's in upstream-convert.test.ts.
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { blipGenerationConfig, blipPreprocessorConfig, completeBlipConfig } from '../../dist/src/convert/blip-family.js';
import { familyOf } from '../../dist/src/convert/families.js';
import type { ModelTemplate } from '../../dist/src/convert/template-types.js';
import { completeVleConfig, vlePreprocessorConfig, VLE_POSITION_TABLE } from '../../dist/src/convert/vle-family.js';
import { ConversionError } from '../../dist/src/errors/conversion-error.js';
import { root } from '../helpers/fixtures.js';

const template = (defaults: Record<string, unknown>): ModelTemplate =>
  ({ id: 'test', kind: 'blip-captioner', folder: '/templates/test', defaults, config: {}, structural: [], variable: [], graphs: {} }) as unknown as ModelTemplate;

const BLIP_DEFAULTS = {
  top: { model_type: 'blip', projection_dim: 512 },
  text: { vocab_size: 30524, hidden_size: 768, encoder_hidden_size: 768, bos_token_id: 30522, sep_token_id: 102, pad_token_id: 0 },
  vision: { hidden_size: 768, image_size: 384, patch_size: 16 },
};
const noShapes = () => undefined;

describe('BLIP config completion', () => {
  it('should fill defaults, read the old *_config_dict keys and tie encoder_hidden_size to the vision width', () => {
    const raw = { text_config_dict: { vocab_size: 100, hidden_size: 32 }, vision_config: { hidden_size: 48 }, projection_dim: 256 };
    const config = completeBlipConfig({ raw, template: template(BLIP_DEFAULTS), shapeOf: noShapes, configFile: 'config.json' });
    expect(config).toEqual({
      projection_dim: 256,
      vision_config: { hidden_size: 48, image_size: 384, patch_size: 16 },
      model_type: 'blip',
      text_config: { vocab_size: 100, hidden_size: 32, encoder_hidden_size: 48, bos_token_id: 30522, sep_token_id: 102, pad_token_id: 0 },
    });
    expect(raw).toEqual({ text_config_dict: { vocab_size: 100, hidden_size: 32 }, vision_config: { hidden_size: 48 }, projection_dim: 256 });
  });

  it('should take the Python constant names of the default tables too, and name a missing table', () => {
    const upper = { TOP_DEFAULTS: BLIP_DEFAULTS.top, TEXT_DEFAULTS: BLIP_DEFAULTS.text, VISION_DEFAULTS: BLIP_DEFAULTS.vision };
    expect(completeBlipConfig({ raw: {}, template: template(upper), shapeOf: noShapes, configFile: 'c' }).text_config).toMatchObject({ vocab_size: 30524 });
    expect(() => completeBlipConfig({ raw: {}, template: template({ top: {}, text: {} }), shapeOf: noShapes, configFile: 'c' })).toThrow(/defaults has no "vision"/);
  });

  it("should let the checkpoint's preprocessor file win, except a shortest-edge size", () => {
    const config = { vision_config: { image_size: 384 } };
    expect(blipPreprocessorConfig(config, { size: 224, resample: 2, image_mean: [0.5, 0.5, 0.5] })).toMatchObject({ size: { height: 224, width: 224 }, resample: 2, image_mean: [0.5, 0.5, 0.5], crop_size: { height: 384, width: 384 } });
    expect(blipPreprocessorConfig(config, { size: { shortest_edge: 224 }, crop_size: { shortest_edge: 5 } })).toMatchObject({ size: { height: 384, width: 384 }, crop_size: { height: 384, width: 384 }, resample: 3 });
  });

  it('should pick generation settings from generation_config.json, then the text config, then the defaults', () => {
    const config = { text_config: { bos_token_id: 30522, sep_token_id: 102, pad_token_id: 0, num_beams: 3, max_length: 30 } };
    expect(blipGenerationConfig(config, undefined)).toEqual({ bos_token_id: 30522, eos_token_id: 102, pad_token_id: 0, max_length: 30, min_length: 0, num_beams: 3, repetition_penalty: 1 });
    expect(blipGenerationConfig(config, { num_beams: 1, max_length: null, max_new_tokens: 12.0, repetition_penalty: 1.5 })).toMatchObject({ num_beams: 1, max_length: 30, max_new_tokens: 12, repetition_penalty: 1.5 });
    // No length anywhere: transformers 5's 20 new tokens.
    expect(blipGenerationConfig({ text_config: { bos_token_id: 1, sep_token_id: 2, pad_token_id: 0 } }, {})).toMatchObject({ max_length: 20, max_new_tokens: 20 });
  });
});

describe('VLE config completion', () => {
  const defaults = {
    vision: { hidden_size: 768, image_size: 224, patch_size: 32, hidden_act: 'quick_gelu' },
    text: { vocab_size: 128100, hidden_size: 1536, pad_token_id: 0, pos_att_type: null, max_relative_positions: -1 },
    fusion: { num_token_types: 2, hidden_size: 768, num_hidden_layers: 6 },
    maxQuestionTokens: 50,
  };
  const raw = {
    model_type: 'vle',
    hidden_size: 40,
    vision_config: { model_type: 'clip', vision_config: { hidden_size: 32, image_size: 224, patch_size: 16, projection_dim: null } },
    text_config: { hidden_size: 48, pos_att_type: 'P2C | c2p', max_relative_positions: null },
    id2label: { '1': 'no', '0': 'yes', '2': '2' },
  };

  it('should complete a config as VLEConfig.to_export_dict does, image size from the position table', () => {
    const config = completeVleConfig({ raw, template: template(defaults), shapeOf: (key) => (key === VLE_POSITION_TABLE ? [1 + 36 * 36, 32] : undefined), configFile: 'config.json' });
    expect(config.vision_config).toEqual({ hidden_size: 32, image_size: 576, patch_size: 16, hidden_act: 'quick_gelu', model_type: 'clip_vision_model', projection_dim: null });
    expect(config.text_config).toEqual({ vocab_size: 128100, hidden_size: 48, pad_token_id: 0, pos_att_type: 'p2c|c2p', max_relative_positions: -1, embedding_size: 48, model_type: 'deberta-v2' });
    expect(config).toMatchObject({ hidden_size: 40, num_token_types: 2, num_hidden_layers: 6, num_labels: 3, max_question_tokens: 50 });
    expect(config.id2label).toEqual({ '0': 'yes', '1': 'no', '2': '2' });
    expect(config.label2id).toEqual({ yes: 0, no: 1, '2': 2 });
  });

  it('should refuse a position table that is not 1 + a square, and labels with a gap', () => {
    const options = { raw, template: template(defaults), configFile: 'config.json' };
    expect(() => completeVleConfig({ ...options, shapeOf: () => [51, 32] })).toThrow(/51 rows/);
    const gap = { ...raw, id2label: { '0': 'yes', '2': 'no' } };
    let error: unknown;
    try {
      completeVleConfig({ ...options, raw: gap, shapeOf: noShapes });
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ name: 'ConversionError', reason: 'bad_config', path: 'id2label' });
    expect(ConversionError.isInstance(error)).toBe(true);
  });

  it("should write CLIP preprocessing from the checkpoint's file and refuse a crop the position table does not fit", () => {
    expect(vlePreprocessorConfig(576, 'p.json', { size: 576, crop_size: 576, do_center_crop: true, image_mean: [0.5, 0.5, 0.5] })).toEqual({
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
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.26862954, 0.26130258, 0.27577711],
    });
    expect(() => vlePreprocessorConfig(576, 'p.json', { crop_size: { height: 224, width: 224 } })).toThrow(/crops to 224/);
  });
});

describe('model family of a checkpoint', () => {
  it('should know BLIP and VLE by model_type, the committed VLE checkpoint included', () => {
    const vleConfig = JSON.parse(readFileSync(path.join(root, 'test', 'fixtures', 'upstream', 'vle-small', 'checkpoint', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(familyOf(vleConfig, 'config.json').kind).toBe('vle-vqa');
    expect(familyOf({ architectures: ['VLEForVQA'] }, 'config.json').kind).toBe('vle-vqa');
    expect(familyOf({ model_type: 'blip' }, 'config.json').kind).toBe('blip-captioner');
    expect(familyOf({}, 'config.json').kind).toBe('blip-captioner');
    expect(() => familyOf({ model_type: 'clip' }, 'config.json')).toThrow(/model_type "clip"/);
  });
});
