import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import { ModelNotFoundError } from '../errors/model-not-found-error.js';
import type { ProgressCallback } from '../types.js';
import { ByteProgress } from './byte-progress.js';
import { MANIFEST_FILE, MODEL_ENV } from './defaults.js';

/** The model kinds this version of the runtime can run. */
export const MODEL_KINDS = ['blip-captioner', 'vle-vqa'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/** One graph input or output. Integers are fixed sizes, strings symbolic ones (`batch`, `sequence`). */
export interface ManifestTensor {
  name: string;
  dtype: string;
  shape: Array<number | string>;
}

/** One ONNX graph of the model. */
export interface ManifestGraph {
  /** Path relative to the folder, `/`-separated. */
  file: string;
  /** Alternative files of the same graph, e.g. `{ int8: 'onnx/vision_encoder.int8.onnx' }`. */
  variants?: Record<string, string>;
  inputs: ManifestTensor[];
  outputs: ManifestTensor[];
}

/** Size and digest of one file of the folder. */
export interface ManifestFile {
  /** Lowercase hex. */
  sha256: string;
  bytes: number;
}

/** `vqa-llm.json`, as the exporter writes it (see models/README.md). */
export interface ModelManifest {
  format: 'vqa-llm-model';
  formatVersion: 1;
  kind: ModelKind;
  name: string;
  source?: { checkpoint?: string; revision?: string };
  exporter?: { name?: string; version?: string; [key: string]: unknown };
  opset?: number;
  graphs: Record<string, ManifestGraph>;
  /** Every file of the folder except the manifest itself, keyed by relative `/`-separated path. */
  files: Record<string, ManifestFile>;
}

export interface CheckModelFolderOptions {
  /** Fail with `wrong_kind` unless the manifest declares this kind. */
  kind?: ModelKind;
  /** Hash every file and compare with the manifest (reads every byte; sizes are always checked). */
  verifyChecksums?: boolean;
  /** Receives `verify:<name>` events while checksums are computed. */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

/**
 * Reads and validates `vqa-llm.json` in `folder`.
 *
 * @throws ModelNotFoundError `missing_folder` when the folder does not exist.
 * @throws ModelIntegrityError `missing_file` without a manifest, `bad_manifest` when it is malformed.
 * @example
 * const manifest = await readManifest('/models/vle-base-for-vqa');
 * manifest.graphs.fusion.inputs.map((input) => input.name); // ['input_ids', 'attention_mask', 'image_embeds']
 */
export async function readManifest(folder: string): Promise<ModelManifest> {
  const absolute = path.resolve(folder);
  await assertFolder(absolute);
  const manifestPath = path.join(absolute, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (error) {
    if (isNotFound(error)) {
      throw new ModelIntegrityError('missing_file', `${absolute} has no ${MANIFEST_FILE}, so it is not a vqa-llm model folder.`, {
        hint: recreateHint(undefined, absolute),
        cause: error,
      });
    }
    throw error;
  }
  return parseManifest(text, manifestPath);
}

/**
 * Parses and validates manifest text; `origin` (a path or URL) only appears in error messages.
 *
 * @throws ModelIntegrityError `bad_manifest`, naming the offending field.
 * @example
 * const manifest = parseManifest(await response.text(), url);
 */
export function parseManifest(text: string, origin: string): ModelManifest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelIntegrityError('bad_manifest', `${origin} is not valid JSON: ${(error as Error).message}.`, { cause: error });
  }
  validateManifest(value, origin);
  return value;
}

/**
 * Checks that `folder` is a usable model folder: a valid manifest, every listed file present with the
 * listed byte size, and with `verifyChecksums` the listed sha256. Returns the manifest.
 *
 * @throws ModelNotFoundError `missing_folder`.
 * @throws ModelIntegrityError `missing_file`, `size_mismatch`, `checksum_mismatch`, `bad_manifest`, `wrong_kind`.
 * @example
 * const manifest = await checkModelFolder(folder, { kind: 'blip-captioner', verifyChecksums: true });
 */
export async function checkModelFolder(folder: string, options: CheckModelFolderOptions = {}): Promise<ModelManifest> {
  const absolute = path.resolve(folder);
  const manifest = await readManifest(absolute);
  if (options.kind !== undefined && manifest.kind !== options.kind) {
    throw new ModelIntegrityError(
      'wrong_kind',
      `${absolute} holds a ${manifest.kind} model (${manifest.name}) where a ${options.kind} model is needed.`,
      { hint: `Point ${options.kind === 'blip-captioner' ? '--caption-model' : '--vqa-model'} at a ${options.kind} folder.` },
    );
  }

  const entries = Object.entries(manifest.files);
  for (const [file, expected] of entries) {
    const filePath = path.join(absolute, ...file.split('/'));
    let size: number;
    try {
      const stats = await stat(filePath);
      if (!stats.isFile()) throw Object.assign(new Error(`${filePath} is not a file`), { code: 'ENOENT' });
      size = stats.size;
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new ModelIntegrityError('missing_file', `${file} is missing from ${absolute} (its manifest lists it).`, {
        hint: recreateHint(manifest, absolute),
        cause: error,
      });
    }
    if (size !== expected.bytes) {
      throw new ModelIntegrityError(
        'size_mismatch',
        `${file} in ${absolute} has ${size} bytes where the manifest says ${expected.bytes}: it is truncated or from another export.`,
        { hint: recreateHint(manifest, absolute) },
      );
    }
  }

  if (options.verifyChecksums) {
    const task = `verify:${manifest.name}`;
    const progress = new ByteProgress(task, entries.reduce((sum, [, entry]) => sum + entry.bytes, 0), options.onProgress);
    for (const [file, expected] of entries) {
      progress.startFile(file, expected.bytes);
      const digest = await sha256File(path.join(absolute, ...file.split('/')), {
        signal: options.signal,
        onBytes: (bytes) => progress.add(bytes),
      });
      if (digest !== expected.sha256) {
        throw new ModelIntegrityError(
          'checksum_mismatch',
          `${file} in ${absolute} has sha256 ${digest} where the manifest says ${expected.sha256}: the file is corrupt or from another export.`,
          { hint: recreateHint(manifest, absolute) },
        );
      }
      progress.doneFile(file);
    }
    progress.ready();
  }
  return manifest;
}

/**
 * Reads one JSON file of a model folder (`config.json`, `preprocessor_config.json`, …) as it is
 * written, snake_case keys included: converting them is the caller's business.
 *
 * @throws ModelIntegrityError `missing_file` when absent, `bad_manifest` when it is not a JSON object.
 * @example
 * const config = await readModelJson(folder, 'config.json');
 * const labels = config.id2label as Record<string, string>;
 */
export async function readModelJson<T extends Record<string, unknown> = Record<string, unknown>>(
  folder: string,
  file: string,
): Promise<T> {
  const absolute = path.resolve(folder);
  const filePath = path.join(absolute, ...file.split('/'));
  let text: string;
  try {
    text = await readFile(filePath, 'utf8');
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw new ModelIntegrityError('missing_file', `${file} is missing from ${absolute}.`, { hint: recreateHint(undefined, absolute), cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // No reason fits better than bad_manifest: these files describe the model just as the manifest does.
    throw new ModelIntegrityError('bad_manifest', `${filePath} is not valid JSON: ${(error as Error).message}.`, {
      hint: recreateHint(undefined, absolute),
      cause: error,
    });
  }
  if (!isRecord(value)) {
    throw new ModelIntegrityError('bad_manifest', `${filePath} must hold a JSON object.`, { hint: recreateHint(undefined, absolute) });
  }
  return value as T;
}

/** The JSON files of a model folder, raw (snake_case as written by the exporter). */
export interface ModelJsonFiles {
  config: Record<string, unknown>;
  preprocessorConfig: Record<string, unknown>;
  /** BLIP only. */
  generationConfig?: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  specialTokensMap?: Record<string, unknown>;
}

/**
 * Reads the folder's JSON files in parallel. `generation_config.json` is required for
 * `blip-captioner` models; `special_tokens_map.json` is optional.
 *
 * @example
 * const { config, preprocessorConfig } = await readModelJsonFiles(folder, manifest);
 */
export async function readModelJsonFiles(folder: string, manifest: ModelManifest): Promise<ModelJsonFiles> {
  const optional = (file: string) => (file in manifest.files ? readModelJson(folder, file) : Promise.resolve(undefined));
  const [config, preprocessorConfig, generationConfig, tokenizerConfig, specialTokensMap] = await Promise.all([
    readModelJson(folder, 'config.json'),
    readModelJson(folder, 'preprocessor_config.json'),
    manifest.kind === 'blip-captioner' ? readModelJson(folder, 'generation_config.json') : optional('generation_config.json'),
    readModelJson(folder, 'tokenizer_config.json'),
    optional('special_tokens_map.json'),
  ]);
  return { config, preprocessorConfig, generationConfig, tokenizerConfig, specialTokensMap };
}

/**
 * sha256 (lowercase hex) of a file, streamed so that multi-gigabyte graphs never sit in memory.
 *
 * @example
 * const digest = await sha256File('onnx/fusion.onnx', { onBytes: (n) => (done += n) });
 */
export async function sha256File(
  filePath: string,
  options: { signal?: AbortSignal; onBytes?: (bytes: number) => void } = {},
): Promise<string> {
  const hash = createHash('sha256');
  const stream = createReadStream(filePath, { highWaterMark: 1 << 20, signal: options.signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    options.onBytes?.(chunk.length);
  }
  return hash.digest('hex');
}

/** @internal Throws `missing_folder`, naming the settings that choose model folders. */
export async function assertFolder(absolute: string): Promise<void> {
  try {
    const stats = await stat(absolute);
    if (stats.isDirectory()) return;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  throw new ModelNotFoundError('missing_folder', `No model folder at ${absolute}.`, { hint: MODEL_SETTINGS_HINT });
}

/** @internal Where users choose model folders; every not-found message names these. */
export const MODEL_SETTINGS_HINT =
  `Choose the models directory with --models DIR or ${MODEL_ENV.modelsDir}, or a folder per model with ` +
  '--caption-model and --vqa-model (a path, a folder name in the models directory, or a hub id owner/name).';

function recreateHint(manifest: ModelManifest | undefined, folder: string): string {
  const isTestModel =
    manifest?.source?.revision === 'random-init' ||
    path.basename(folder).startsWith('tiny-') ||
    folder.split(path.sep).join('/').includes('test/fixtures/models');
  if (isTestModel) return 'Re-create the test models with `npm run models:test`.';
  const checkpoint = manifest?.source?.checkpoint;
  return checkpoint
    ? `Export the model again with \`vqa-llm models export ${checkpoint}\`.`
    : 'Export the model again with `vqa-llm models export …` (or `npm run models:test` for the test models).';
}

function validateManifest(value: unknown, origin: string): asserts value is ModelManifest {
  const fail = (field: string, problem: string): never => {
    throw new ModelIntegrityError('bad_manifest', `${origin}: ${field} ${problem}.`, {
      hint: 'The manifest format is described in models/README.md; export the model again to rewrite it.',
    });
  };
  if (!isRecord(value)) return fail('the manifest', 'must be a JSON object');
  if (value.format !== 'vqa-llm-model') fail('format', `must be "vqa-llm-model", not ${JSON.stringify(value.format)}`);
  if (value.formatVersion !== 1) {
    fail('formatVersion', `is ${JSON.stringify(value.formatVersion)}; this version of vqa-llm reads format version 1 only`);
  }
  if (!MODEL_KINDS.includes(value.kind as ModelKind)) {
    fail('kind', `must be one of ${MODEL_KINDS.join(', ')}, not ${JSON.stringify(value.kind)}`);
  }
  if (typeof value.name !== 'string' || value.name === '') fail('name', 'must be a non-empty string');
  if (value.source !== undefined && !isRecord(value.source)) fail('source', 'must be an object');
  if (value.exporter !== undefined && !isRecord(value.exporter)) fail('exporter', 'must be an object');
  if (value.opset !== undefined && !Number.isInteger(value.opset)) fail('opset', 'must be an integer');

  const files = value.files;
  if (!isRecord(files) || Object.keys(files).length === 0) return fail('files', 'must be a non-empty object');
  for (const [file, entry] of Object.entries(files)) {
    const field = `files[${JSON.stringify(file)}]`;
    if (!isSafeRelativePath(file)) fail(field, 'must be a relative /-separated path inside the folder');
    if (file === MANIFEST_FILE) fail(field, 'must not list the manifest itself');
    if (!isRecord(entry)) return fail(field, 'must be an object with sha256 and bytes');
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) fail(`${field}.sha256`, 'must be 64 lowercase hex digits');
    if (!Number.isSafeInteger(entry.bytes) || (entry.bytes as number) < 0) fail(`${field}.bytes`, 'must be a non-negative integer');
  }

  const graphs = value.graphs;
  if (!isRecord(graphs) || Object.keys(graphs).length === 0) return fail('graphs', 'must be a non-empty object');
  for (const [graphName, graph] of Object.entries(graphs)) {
    const field = `graphs.${graphName}`;
    if (!isRecord(graph)) return fail(field, 'must be an object');
    if (typeof graph.file !== 'string' || !(graph.file in files)) fail(`${field}.file`, 'must name a file listed in files');
    if (graph.variants !== undefined) {
      if (!isRecord(graph.variants)) return fail(`${field}.variants`, 'must be an object');
      for (const [variant, file] of Object.entries(graph.variants)) {
        if (typeof file !== 'string' || !(file in files)) fail(`${field}.variants.${variant}`, 'must name a file listed in files');
      }
    }
    for (const side of ['inputs', 'outputs'] as const) {
      const tensors = graph[side];
      if (!Array.isArray(tensors) || tensors.length === 0) return fail(`${field}.${side}`, 'must be a non-empty array');
      tensors.forEach((tensor: unknown, index) => {
        const tensorField = `${field}.${side}[${index}]`;
        if (!isRecord(tensor)) return fail(tensorField, 'must be an object');
        if (typeof tensor.name !== 'string' || tensor.name === '') fail(`${tensorField}.name`, 'must be a non-empty string');
        if (typeof tensor.dtype !== 'string' || tensor.dtype === '') fail(`${tensorField}.dtype`, 'must be a non-empty string');
        const shapeOk =
          Array.isArray(tensor.shape) &&
          tensor.shape.every((size: unknown) => (typeof size === 'string' && size !== '') || (Number.isInteger(size) && (size as number) >= 0));
        if (!shapeOk) fail(`${tensorField}.shape`, 'must be an array of non-negative integers and symbolic names');
      });
    }
  }
}

/** @internal Manifests downloaded from the network choose file names: refuse anything that could escape the folder. */
export function isSafeRelativePath(file: string): boolean {
  if (file === '' || file.startsWith('/') || file.includes('\\') || file.includes('\0') || /^[a-zA-Z]:/.test(file)) return false;
  return file.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

/** @internal */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** @internal */
export function isNotFound(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
