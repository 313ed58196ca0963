// BLIP captioning checkpoints (transformers' BlipForConditionalGeneration): ports of models/vqa_llm_export/blip.py's
// complete_config, preprocessor_config and generation_config, so a converted folder holds the files Python writes.
import path from 'node:path';
import { isRecord } from '../models/manifest.js';
import { copyJson, defaultsTable } from './defaults-table.js';
import { readOptionalJson } from './json-files.js';
import type { CompleteConfigOptions, FolderFilesOptions, ModelFamily } from './model-family.js';
import { writeBlipTokenizerFiles } from './tokenizer/index.js';

// CLIP's statistics: BLIP normalises with them (blip.CLIP_MEAN / CLIP_STD).
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

type Json = Record<string, unknown>;

/** blip.complete_config: every text/vision value written out, with the template's copies of transformers' defaults. */
export function completeBlipConfig({ raw, template }: CompleteConfigOptions): Json {
  const config = copyJson(raw);
  for (const [key, value] of Object.entries(defaultsTable(template, ['top', 'TOP_DEFAULTS']))) {
    if (!Object.hasOwn(config, key)) config[key] = copyJson(value);
  }
  // Old configs used *_config_dict; transformers accepts both.
  const text: Json = copyJson(defaultsTable(template, ['text', 'TEXT_DEFAULTS']));
  Object.assign(text, asRecord(config.text_config_dict), asRecord(config.text_config));
  delete config.text_config_dict;
  const vision: Json = copyJson(defaultsTable(template, ['vision', 'VISION_DEFAULTS']));
  Object.assign(vision, asRecord(config.vision_config_dict), asRecord(config.vision_config));
  delete config.vision_config_dict;
  // BlipConfig forces this: the decoder's cross-attention reads the vision tower's output.
  text.encoder_hidden_size = vision.hidden_size;
  config.text_config = text;
  config.vision_config = vision;
  return config;
}

const asRecord = (value: unknown): Json => (isRecord(value) ? copyJson(value) : {});

/** blip.preprocessor_config: every key the runtime reads; the checkpoint's own file wins where it says more. */
export function blipPreprocessorConfig(config: Json, upstream?: Json): Json {
  const size = (config.vision_config as Json).image_size;
  const result: Json = {
    image_processor_type: 'BlipImageProcessor',
    processor_class: 'BlipProcessor',
    do_convert_rgb: true,
    do_resize: true,
    size: { height: size, width: size },
    resample: 3,
    do_center_crop: false,
    crop_size: { height: size, width: size },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [...CLIP_MEAN],
    image_std: [...CLIP_STD],
  };
  for (let [key, value] of Object.entries(upstream ?? {})) {
    if (key === 'size' && Number.isInteger(value)) value = { height: value, width: value };
    // BLIP resizes to an exact square; keep the explicit height/width.
    if ((key === 'size' || key === 'crop_size') && isRecord(value) && 'shortest_edge' in value) continue;
    result[key] = value;
  }
  // transformers.js's base processor defaults to bilinear: BLIP is bicubic unless the checkpoint says otherwise.
  if (!Object.hasOwn(result, 'resample')) result.resample = 3;
  return result;
}

/** blip.generation_config: generation_config.json first, then the text config, then transformers' defaults. */
export function blipGenerationConfig(config: Json, upstream?: Json): Json {
  const text = config.text_config as Json;
  const sources = [upstream ?? {}, text];
  const pick = (key: string, fallback: unknown): unknown => {
    for (const source of sources) if (source[key] !== undefined && source[key] !== null) return source[key];
    return fallback;
  };
  const result: Json = {
    bos_token_id: text.bos_token_id,
    // The HF BLIP generate() stops on [SEP], not on the config's eos_token_id (2).
    eos_token_id: text.sep_token_id,
    pad_token_id: text.pad_token_id,
    max_length: pick('max_length', 20),
    min_length: pick('min_length', 0),
    num_beams: pick('num_beams', 1),
    repetition_penalty: Number(pick('repetition_penalty', 1.0)),
  };
  // A checkpoint that sets no length gets transformers 5's default of 20 new tokens after the prompt.
  let maxNewTokens = pick('max_new_tokens', null);
  if (maxNewTokens === null && pick('max_length', null) === null) maxNewTokens = 20;
  if (maxNewTokens !== null) result.max_new_tokens = Math.trunc(Number(maxNewTokens));
  return result;
}

export const blipFamily: ModelFamily = {
  kind: 'blip-captioner',
  exportCommand: 'blip',
  completeConfig: completeBlipConfig,
  async folderFiles({ config, checkpointDir }: FolderFilesOptions) {
    const [preprocessor, generation] = await Promise.all([
      readOptionalJson(path.join(checkpointDir, 'preprocessor_config.json')),
      readOptionalJson(path.join(checkpointDir, 'generation_config.json')),
    ]);
    return {
      'preprocessor_config.json': blipPreprocessorConfig(config, preprocessor),
      'generation_config.json': blipGenerationConfig(config, generation),
    };
  },
  writeTokenizer: (checkpointDir, outDir) => writeBlipTokenizerFiles(checkpointDir, outDir),
};
