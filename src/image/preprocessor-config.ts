import { ModelIntegrityError } from '../errors/index.js';
import type { PreprocessorConfig } from '../types.js';

/** PIL resampling codes `preprocessImage` implements: nearest, lanczos, bilinear, bicubic, box, hamming. */
export const SUPPORTED_RESAMPLE = [0, 1, 2, 3, 4, 5] as const;

type Json = Record<string, unknown>;

/**
 * Converts a model folder's `preprocessor_config.json` (snake_case, as Hugging Face writes it) to
 * `PreprocessorConfig`. Every key the runtime uses must be written out: a missing key would otherwise
 * fall back to some library's default, and those differ (transformers.js defaults to bilinear, BLIP is bicubic).
 *
 * @param json the parsed file
 * @param source the file's path, named in errors
 * @example
 * const json = JSON.parse(await readFile('models/vle-base/preprocessor_config.json', 'utf8'));
 * const config = parsePreprocessorConfig(json, 'models/vle-base/preprocessor_config.json');
 * // config.size -> { shortestEdge: 576 }, config.resample -> 3
 */
export function parsePreprocessorConfig(json: unknown, source: string): PreprocessorConfig {
  if (!isObject(json)) throw bad(source, 'the file', 'a JSON object', json);
  const doCenterCrop = readBoolean(json, 'do_center_crop', source);
  const resample = readNumber(json, 'resample', source, { integer: true });
  if (!(SUPPORTED_RESAMPLE as readonly number[]).includes(resample)) {
    throw bad(source, 'resample', `a PIL resampling code (${SUPPORTED_RESAMPLE.join(', ')})`, resample);
  }
  return {
    doConvertRgb: readBoolean(json, 'do_convert_rgb', source),
    doResize: readBoolean(json, 'do_resize', source),
    size: readSize(json, source),
    resample,
    doCenterCrop,
    cropSize: readHeightWidth(json, 'crop_size', source),
    doRescale: readBoolean(json, 'do_rescale', source),
    rescaleFactor: readNumber(json, 'rescale_factor', source, { positive: true }),
    doNormalize: readBoolean(json, 'do_normalize', source),
    imageMean: readTriple(json, 'image_mean', source, false),
    imageStd: readTriple(json, 'image_std', source, true),
  };
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function present(json: Json, key: string, source: string): unknown {
  if (!(key in json) || json[key] === undefined) {
    throw new ModelIntegrityError('bad_manifest', `${source} has no "${key}"; the exporter writes every preprocessing key, so the file is incomplete.`, {
      hint: 'Re-export the model folder.',
    });
  }
  return json[key];
}

function readBoolean(json: Json, key: string, source: string): boolean {
  const value = present(json, key, source);
  if (typeof value !== 'boolean') throw bad(source, key, 'true or false', value);
  return value;
}

function readNumber(json: Json, key: string, source: string, rules: { integer?: boolean; positive?: boolean } = {}): number {
  return checkNumber(present(json, key, source), key, source, rules);
}

function checkNumber(value: unknown, key: string, source: string, rules: { integer?: boolean; positive?: boolean }): number {
  const ok = typeof value === 'number' && Number.isFinite(value) && (!rules.integer || Number.isInteger(value)) && (!rules.positive || value > 0);
  if (!ok) throw bad(source, key, `a finite${rules.positive ? ' positive' : ''} ${rules.integer ? 'integer' : 'number'}`, value);
  return value;
}

function readHeightWidth(json: Json, key: string, source: string): { height: number; width: number } {
  const value = present(json, key, source);
  if (!isObject(value) || !('height' in value) || !('width' in value)) throw bad(source, key, '{"height", "width"}', value);
  const rules = { integer: true, positive: true };
  return { height: checkNumber(value.height, `${key}.height`, source, rules), width: checkNumber(value.width, `${key}.width`, source, rules) };
}

function readSize(json: Json, source: string): PreprocessorConfig['size'] {
  const value = present(json, 'size', source);
  const expected = '{"height", "width"} or {"shortest_edge"}';
  if (!isObject(value)) throw bad(source, 'size', expected, value);
  const keys = Object.keys(value).sort().join(',');
  if (keys === 'height,width') return readHeightWidth(json, 'size', source);
  if (keys === 'shortest_edge') {
    return { shortestEdge: checkNumber(value.shortest_edge, 'size.shortest_edge', source, { integer: true, positive: true }) };
  }
  // e.g. {"shortest_edge", "longest_edge"}: a resize rule this runtime does not implement, so refuse it rather than ignore half.
  throw bad(source, 'size', expected, value);
}

function readTriple(json: Json, key: string, source: string, positive: boolean): [number, number, number] {
  const value = present(json, key, source);
  if (!Array.isArray(value) || value.length !== 3) throw bad(source, key, 'an array of 3 numbers (one per RGB channel)', value);
  return value.map((item, index) => checkNumber(item, `${key}[${index}]`, source, { positive })) as [number, number, number];
}

function bad(source: string, key: string, expected: string, value: unknown): ModelIntegrityError {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = String(value);
  }
  return new ModelIntegrityError('bad_manifest', `${source}: "${key}" must be ${expected}, got ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown}.`, {
    hint: 'Re-export the model folder.',
  });
}
