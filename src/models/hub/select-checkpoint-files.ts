import type { HubFile } from './hub-types.js';

/** The small files a model folder is built from, when the repository has them (at its root). */
export const CHECKPOINT_SIDE_FILES = [
  'config.json',
  'preprocessor_config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.txt',
  'spm.model',
] as const;

/** Weight files in order of preference: the first present is the one downloaded. */
export const CHECKPOINT_WEIGHTS = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'] as const;

/**
 * The default selection of `downloadHubSnapshot`: the configs and tokenizer files, and ONE weights format:
 * `model.safetensors` (or its `.index.json`, whose shards are added once it is read) when present, else
 * `pytorch_model.bin` (or its index). Never both formats, never TensorFlow, Flax, ONNX or other large files.
 *
 * @example
 * selectCheckpointFiles(files).map((file) => file.path);
 * // ['config.json', 'model.safetensors', 'preprocessor_config.json', 'tokenizer.json', ...]
 */
export function selectCheckpointFiles(files: HubFile[]): HubFile[] {
  const byPath = new Map(files.map((file) => [file.path, file]));
  const weights = CHECKPOINT_WEIGHTS.map((name) => byPath.get(name)).find((file) => file !== undefined);
  const side = CHECKPOINT_SIDE_FILES.map((name) => byPath.get(name)).filter((file) => file !== undefined);
  return [...side, ...(weights ? [weights] : [])].sort((left, right) => (left.path < right.path ? -1 : left.path > right.path ? 1 : 0));
}

/** True for a sharded checkpoint's index (`*.safetensors.index.json`, `*.bin.index.json`), whose shards follow it. */
export function isWeightsIndex(file: string): boolean {
  return /\.(safetensors|bin)\.index\.json$/.test(file);
}

/**
 * The shard files an index names (its `weight_map` values), as repository paths beside the index.
 *
 * @throws Error when the text is not an index (the caller names the file).
 */
export function shardsOfIndex(indexPath: string, text: string): string[] {
  const value = JSON.parse(text) as { weight_map?: Record<string, unknown> };
  if (typeof value.weight_map !== 'object' || value.weight_map === null) throw new Error('it has no weight_map');
  const folder = indexPath.includes('/') ? indexPath.slice(0, indexPath.lastIndexOf('/') + 1) : '';
  const shards = new Set<string>();
  for (const shard of Object.values(value.weight_map)) {
    if (typeof shard !== 'string' || shard === '' || shard.includes('..') || shard.startsWith('/')) throw new Error(`it names a shard ${JSON.stringify(shard)}`);
    shards.add(folder + shard);
  }
  return [...shards].sort();
}
