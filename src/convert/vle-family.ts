// VLE VQA checkpoints (iflytek/VLE's VLEForVQA): ports of models/vqa_llm_export/vle.py's VLEConfig.to_export_dict,
// the image size load_vle_checkpoint takes from the position table, and preprocessor_config.
import path from 'node:path';
import { ConversionError } from '../errors/conversion-error.js';
import { isRecord } from '../models/manifest.js';
import { copyJson, defaultsTable } from './defaults-table.js';
import { readOptionalJson } from './json-files.js';
import type { CompleteConfigOptions, FolderFilesOptions, ModelFamily } from './model-family.js';
import { writeVleTokenizerFiles } from './tokenizer/index.js';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];
/** The checkpoint tensor whose rows give the CLIP image size (VLE stretches it to the fine-tuning resolution). */
export const VLE_POSITION_TABLE = 'vle.vision_model.vision_model.embeddings.position_embedding.weight';
// vle.MAX_QUESTION_TOKENS, for templates whose defaults do not carry it: VQA v2 fine-tuning used 50 tokens.
const MAX_QUESTION_TOKENS = 50;

type Json = Record<string, unknown>;

/** vle._section: defaults, overridden by the config's values except nulls for keys that have a default. */
function section(values: Json, defaults: Json): Json {
  const merged = copyJson(defaults);
  for (const [key, value] of Object.entries(values)) {
    if ((value !== null && value !== undefined) || !Object.hasOwn(defaults, key)) merged[key] = copyJson(value);
  }
  return merged;
}

/** VLEConfig(raw).to_export_dict(), with vision.image_size from the position table as load_vle_checkpoint sets it. */
export function completeVleConfig({ raw, template, shapeOf, configFile }: CompleteConfigOptions): Json {
  const fail = (field: string, problem: string): never => {
    throw new ConversionError('bad_config', `${configFile}: ${field} ${problem}.`, { file: configFile, path: field });
  };
  let visionValues = isRecord(raw.vision_config) ? raw.vision_config : {};
  // A full CLIP config was given; VLE keeps only its vision half.
  if (visionValues.model_type === 'clip' && isRecord(visionValues.vision_config)) visionValues = visionValues.vision_config;
  const vision = section(visionValues, defaultsTable(template, ['vision', 'CLIP_VISION_DEFAULTS']));
  const text = section(isRecord(raw.text_config) ? raw.text_config : {}, defaultsTable(template, ['text', 'DEBERTA_V2_DEFAULTS']));
  let posAttType = text.pos_att_type;
  if (typeof posAttType === 'string') posAttType = posAttType.toLowerCase().split('|').map((part) => part.trim());
  text.pos_att_type = Array.isArray(posAttType) ? posAttType : [];
  if (text.embedding_size === undefined || text.embedding_size === null) text.embedding_size = text.hidden_size;
  const fusionDefaults = defaultsTable(template, ['fusion', 'vle', 'VLE_DEFAULTS']);
  const fusion = section(Object.fromEntries(Object.keys(fusionDefaults).filter((key) => Object.hasOwn(raw, key)).map((key) => [key, raw[key]])), fusionDefaults);

  const id2labelRaw = isRecord(raw.id2label) ? raw.id2label : {};
  const labels = new Map<number, unknown>();
  for (const [key, label] of Object.entries(id2labelRaw)) {
    if (!/^-?\d+$/.test(key.trim())) fail('id2label', `has the key ${JSON.stringify(key)}, which is not an index`);
    labels.set(Number.parseInt(key, 10), label);
  }
  if (labels.size === 0) fail('id2label', 'is missing: a VLE VQA checkpoint needs its answer vocabulary');
  const indices = [...labels.keys()].sort((left, right) => left - right);
  if (indices.some((index, position) => index !== position)) fail('id2label', 'must map every index 0..num_labels-1');

  const rows = shapeOf(VLE_POSITION_TABLE)?.[0];
  if (rows !== undefined) {
    const grid = Math.floor(Math.sqrt(rows - 1));
    const exact = [grid - 1, grid, grid + 1].find((candidate) => candidate >= 0 && candidate * candidate + 1 === rows);
    if (exact === undefined) {
      throw new ConversionError('bad_config', `${VLE_POSITION_TABLE} has ${rows} rows, not 1 + a square number of patches.`, { key: VLE_POSITION_TABLE });
    }
    vision.image_size = exact * Number(vision.patch_size);
  }

  const out = copyJson(raw);
  out.model_type = Object.hasOwn(out, 'model_type') ? out.model_type : 'vle';
  out.vision_config = { ...vision, model_type: 'clip_vision_model' };
  const textOut = { ...text };
  textOut.pos_att_type = (text.pos_att_type as string[]).length > 0 ? (text.pos_att_type as string[]).join('|') : null;
  textOut.model_type = 'deberta-v2';
  out.text_config = textOut;
  for (const [key, value] of Object.entries(fusion)) out[key] = value;
  out.num_labels = labels.size;
  out.id2label = Object.fromEntries(indices.map((index) => [String(index), labels.get(index)]));
  const label2id: Json = {};
  for (const index of indices) label2id[String(labels.get(index))] = index;
  out.label2id = label2id;
  const maxQuestionTokens = template.defaults.maxQuestionTokens ?? template.defaults.MAX_QUESTION_TOKENS ?? MAX_QUESTION_TOKENS;
  out.max_question_tokens = Math.trunc(Number(Object.hasOwn(raw, 'max_question_tokens') ? raw.max_question_tokens : maxQuestionTokens));
  return out;
}

/** vle.preprocessor_config: CLIPImageProcessor settings, the checkpoint's own file winning where it has them. */
export function vlePreprocessorConfig(imageSize: number, upstreamFile: string, upstream: Json = {}): Json {
  const edge = (value: unknown, fallback: number): number => {
    if (isRecord(value)) return Math.trunc(Number(value.shortest_edge || value.height || fallback));
    return value ? Math.trunc(Number(value)) : fallback;
  };
  const shortest = edge(upstream.size, imageSize);
  const crop = edge(upstream.crop_size, imageSize);
  if (crop !== imageSize) {
    throw new ConversionError('bad_config', `${upstreamFile} crops to ${crop} but the vision tower's position embeddings fit ${imageSize}.`, {
      file: upstreamFile,
      path: 'crop_size',
    });
  }
  const has = (key: string) => Object.hasOwn(upstream, key);
  return {
    image_processor_type: 'CLIPImageProcessor',
    do_convert_rgb: Boolean(has('do_convert_rgb') ? upstream.do_convert_rgb : true),
    do_resize: Boolean(has('do_resize') ? upstream.do_resize : true),
    size: { shortest_edge: shortest },
    resample: Math.trunc(Number(has('resample') ? upstream.resample : 3)),
    do_center_crop: Boolean(has('do_center_crop') ? upstream.do_center_crop : true),
    crop_size: { height: crop, width: crop },
    do_rescale: Boolean(has('do_rescale') ? upstream.do_rescale : true),
    rescale_factor: Number(has('rescale_factor') ? upstream.rescale_factor : 1 / 255),
    do_normalize: Boolean(has('do_normalize') ? upstream.do_normalize : true),
    image_mean: [...((has('image_mean') ? upstream.image_mean : CLIP_MEAN) as number[])],
    image_std: [...((has('image_std') ? upstream.image_std : CLIP_STD) as number[])],
  };
}

export const vleFamily: ModelFamily = {
  kind: 'vle-vqa',
  exportCommand: 'vle',
  completeConfig: completeVleConfig,
  async folderFiles({ config, checkpointDir }: FolderFilesOptions) {
    const file = path.join(checkpointDir, 'preprocessor_config.json');
    const upstream = await readOptionalJson(file);
    const imageSize = Number((config.vision_config as Json).image_size);
    return { 'preprocessor_config.json': vlePreprocessorConfig(imageSize, file, upstream) };
  },
  writeTokenizer: (checkpointDir, outDir) => writeVleTokenizerFiles(checkpointDir, outDir),
};
