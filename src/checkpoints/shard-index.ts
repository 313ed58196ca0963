// Hugging Face's shard index (`model.safetensors.index.json`, `pytorch_model.bin.index.json`): which file holds
// each tensor. Only file names inside the checkpoint's folder are accepted.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from '../errors/checkpoint-error.js';

export interface ShardIndex {
  /** Shard paths, in first-mention order. */
  shards: string[];
  /** Tensor name -> shard path. */
  weightMap: Map<string, string>;
}

/** Reads an index file; shard names are resolved against its folder and may not leave it. */
export async function readShardIndex(file: string): Promise<ShardIndex> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new CheckpointError('bad_header', `${file} is not a JSON shard index.`, { file, cause: error });
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new CheckpointError('bad_header', `${file} has no weight_map object.`, { file });
  }
  const folder = path.dirname(file);
  const index: ShardIndex = { shards: [], weightMap: new Map() };
  for (const [key, shard] of Object.entries(weightMap)) {
    const plain = typeof shard === 'string' && shard !== '' && !/[\\/]/.test(shard) && shard !== '.' && shard !== '..';
    if (!plain) throw new CheckpointError('bad_header', `${file}: tensor ${JSON.stringify(key)} maps to ${JSON.stringify(shard)}, not a file name in the same folder.`, { file, key });
    // A safetensors index names safetensors shards only, so that choosing safetensors never reaches a pickle.
    if (path.extname(shard) !== path.extname(file.replace(/\.index\.json$/, ''))) {
      throw new CheckpointError('bad_header', `${file}: tensor ${JSON.stringify(key)} maps to ${JSON.stringify(shard)}, a shard of another format.`, { file, key });
    }
    const shardPath = path.join(folder, shard);
    if (!index.shards.includes(shardPath)) index.shards.push(shardPath);
    index.weightMap.set(key, shardPath);
  }
  return index;
}
