// One entry point for every checkpoint layout the hub uses: a folder (or file) holding model.safetensors, its shards
// with model.safetensors.index.json, pytorch_model.bin, or its shards with pytorch_model.bin.index.json.
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from '../errors/checkpoint-error.js';
import { outputDtype } from './dtypes.js';
import { readPytorchIndex } from './pytorch-zip.js';
import { readTensorData } from './read-tensor.js';
import { readSafetensorsIndex } from './safetensors.js';
import { readShardIndex } from './shard-index.js';
import type { Checkpoint, CheckpointFormat, CheckpointTensor, ExpectKeysOptions, ReadTensorOptions, TensorInfo, TensorLocation } from './types.js';

/**
 * The files a checkpoint folder is looked up by, in order of preference (safetensors first: no pickle at all).
 *
 * @example
 * const hasCheckpoint = CHECKPOINT_FILES.some((name) => existsSync(path.join(folder, name)));
 */
export const CHECKPOINT_FILES = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'] as const;

const formatOf = (file: string): CheckpointFormat => (/\.safetensors(\.index\.json)?$/.test(file) ? 'safetensors' : 'pytorch');

async function exists(file: string): Promise<boolean> {
  return stat(file).then((stats) => stats.isFile(), () => false);
}

/** The file to open for `target`: the file itself, or the first of CHECKPOINT_FILES in the folder. */
async function resolveEntryFile(target: string): Promise<string> {
  const stats = await stat(target).catch(() => undefined);
  if (!stats) throw new CheckpointError('missing_file', `No checkpoint at ${target}: it does not exist.`, { file: target });
  if (stats.isFile()) return target;
  for (const name of CHECKPOINT_FILES) {
    if (await exists(path.join(target, name))) return path.join(target, name);
  }
  throw new CheckpointError('missing_file', `No checkpoint in ${target}: none of ${CHECKPOINT_FILES.join(', ')}.`, { file: target });
}

async function readIndexOf(handle: FileHandle, file: string): Promise<TensorLocation[]> {
  return formatOf(file) === 'safetensors' ? readSafetensorsIndex(handle, file) : readPytorchIndex(handle, file);
}

async function openFile(file: string, handles: Map<string, FileHandle>): Promise<TensorLocation[]> {
  const handle = await open(file, 'r').catch((error: unknown) => {
    throw new CheckpointError('missing_file', `Cannot open checkpoint file ${file}.`, { file, cause: error });
  });
  handles.set(file, handle);
  return readIndexOf(handle, file);
}

/** Every tensor of a sharded checkpoint: each shard's own, with the index's claims checked against them. */
async function openShards(indexFile: string, handles: Map<string, FileHandle>): Promise<TensorLocation[]> {
  const { shards, weightMap } = await readShardIndex(indexFile);
  const locations = new Map<string, TensorLocation>();
  for (const shard of shards) {
    for (const location of await openFile(shard, handles)) {
      const other = locations.get(location.key);
      if (other) throw new CheckpointError('bad_header', `Tensor ${JSON.stringify(location.key)} is in both ${other.file} and ${shard}.`, { file: shard, key: location.key });
      locations.set(location.key, location);
    }
  }
  for (const [key, shard] of weightMap) {
    if (locations.get(key)?.file !== shard) {
      throw new CheckpointError('missing_key', `${indexFile} puts tensor ${JSON.stringify(key)} in ${shard}, which does not hold it.`, { file: shard, key });
    }
  }
  return [...locations.values()];
}

const sameShape = (left: readonly number[], right: readonly number[]) => left.length === right.length && left.every((size, axis) => size === right[axis]);

function listKeys(keys: string[]): string {
  const shown = keys.slice(0, 5).map((key) => JSON.stringify(key)).join(', ');
  return keys.length > 5 ? `${shown} and ${keys.length - 5} more` : shown;
}

class OpenCheckpoint implements Checkpoint {
  readonly keys: readonly string[];
  readonly files: readonly string[];
  readonly #locations: Map<string, TensorLocation>;
  readonly #handles: Map<string, FileHandle>;
  readonly #reading = new Set<Promise<unknown>>();
  #closed = false;

  constructor(readonly path: string, readonly format: CheckpointFormat, locations: TensorLocation[], handles: Map<string, FileHandle>) {
    this.#locations = new Map(locations.map((location) => [location.key, location]));
    this.#handles = handles;
    this.keys = Object.freeze(locations.map((location) => location.key));
    this.files = Object.freeze([...handles.keys()]);
  }

  has(key: string): boolean {
    return this.#locations.has(key);
  }

  info(key: string): TensorInfo {
    const location = this.#locations.get(key);
    if (!location) throw new CheckpointError('missing_key', `The checkpoint ${this.path} has no tensor ${JSON.stringify(key)}.`, { file: this.path, key });
    return { key, sourceDtype: location.sourceDtype, dtype: outputDtype(location.sourceDtype), shape: location.shape, file: location.file };
  }

  async read(key: string, options: ReadTensorOptions = {}): Promise<CheckpointTensor> {
    if (this.#closed) throw new CheckpointError('closed', `The checkpoint ${this.path} is closed; cannot read ${JSON.stringify(key)}.`, { file: this.path, key });
    const info = this.info(key);
    if (options.shape && !sameShape(options.shape, info.shape)) {
      throw new CheckpointError('shape_mismatch', `${info.file}: tensor ${JSON.stringify(key)} has shape ${JSON.stringify(info.shape)}, expected ${JSON.stringify(options.shape)}.`, { file: info.file, key });
    }
    const location = this.#locations.get(key)!;
    const reading = readTensorData(this.#handles.get(location.file)!, location);
    this.#reading.add(reading);
    try {
      return { ...info, data: await reading };
    } finally {
      this.#reading.delete(reading);
    }
  }

  expectKeys(expected: Iterable<string>, options: ExpectKeysOptions = {}): void {
    const wanted = new Set(expected);
    const missing = [...wanted].filter((key) => !this.#locations.has(key));
    if (missing.length > 0) {
      throw new CheckpointError('missing_key', `The checkpoint ${this.path} lacks ${missing.length} expected tensor(s): ${listKeys(missing)}.`, { file: this.path, key: missing[0] });
    }
    const { allowUnexpected = false } = options;
    if (allowUnexpected === true) return;
    const unexpected = this.keys.filter((key) => !wanted.has(key) && !(typeof allowUnexpected === 'function' && allowUnexpected(key)));
    if (unexpected.length > 0) {
      const file = this.#locations.get(unexpected[0]!)!.file;
      throw new CheckpointError('unexpected_key', `${file} holds ${unexpected.length} unexpected tensor(s): ${listKeys(unexpected)}.`, { file, key: unexpected[0] });
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Reads already under way finish first: closing their handle under them would fail them with EBADF.
    await Promise.allSettled([...this.#reading]);
    await Promise.all([...this.#handles.values()].map((handle) => handle.close()));
  }
}

/**
 * Opens a checkpoint without executing anything in it: a folder holding `model.safetensors`,
 * `model.safetensors.index.json` (shards), `pytorch_model.bin` or `pytorch_model.bin.index.json` (tried in that
 * order), or one of those files. The index of every file is read and checked now (headers, the pickle against an
 * allow-list, dtypes, every tensor's bytes inside its file); the tensors are read one at a time by `read`, so
 * converting a model holds no more than the tensors the caller keeps. Errors are `CheckpointError`s naming the file
 * and the tensor.
 *
 * @example
 * const checkpoint = await openCheckpoint('checkpoints/blip-image-captioning-base');
 * try {
 *   checkpoint.expectKeys(graphWeightNames, { allowUnexpected: (key) => key.endsWith('.position_ids') });
 *   for (const key of checkpoint.keys) {
 *     const { data, shape } = await checkpoint.read(key); // Float32Array for float16/bfloat16/float32/float64
 *     addInitializer(key, shape, data);
 *   }
 * } finally {
 *   await checkpoint.close();
 * }
 */
export async function openCheckpoint(target: string): Promise<Checkpoint> {
  const file = await resolveEntryFile(target);
  const handles = new Map<string, FileHandle>();
  try {
    const locations = file.endsWith('.index.json') ? await openShards(file, handles) : await openFile(file, handles);
    return new OpenCheckpoint(target, formatOf(file), locations, handles);
  } catch (error) {
    await Promise.all([...handles.values()].map((handle) => handle.close()));
    throw error;
  }
}
