// Upstream-format repositories for the hub client's tests: what the hub holds for a checkpoint (configs, tokenizer
// files, weights in LFS) plus the files a default download must leave alone. The weights are random bytes: the
// client moves files, it never parses them.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import path from 'node:path';

import type { ProgressEvent } from '../../dist/src/types.js';

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A BLIP-like repo with safetensors and the .bin beside it, decoys in other formats, and a README. */
export function blipLikeRepo(weightBytes = 3 << 20): Record<string, Buffer> {
  return {
    'config.json': Buffer.from(JSON.stringify({ architectures: ['BlipForConditionalGeneration'], model_type: 'blip' }, null, 2)),
    'preprocessor_config.json': Buffer.from(JSON.stringify({ image_processor_type: 'BlipImageProcessor', size: { height: 384, width: 384 } })),
    'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0', model: { type: 'WordPiece', vocab: { '[PAD]': 0 } } })),
    'tokenizer_config.json': Buffer.from(JSON.stringify({ tokenizer_class: 'BertTokenizer' })),
    'special_tokens_map.json': Buffer.from(JSON.stringify({ pad_token: '[PAD]' })),
    'vocab.txt': Buffer.from('[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n'),
    'model.safetensors': randomBytes(weightBytes),
    'pytorch_model.bin': randomBytes(1 << 20),
    'tf_model.h5': randomBytes(200_000),
    'flax_model.msgpack': randomBytes(100_000),
    'README.md': Buffer.from('# blip-like\n'),
  };
}

/** A VLE-like repo: pytorch_model.bin only, and spm.model in place of tokenizer.json. */
export function vleLikeRepo(): Record<string, Buffer> {
  return {
    'config.json': Buffer.from(JSON.stringify({ model_type: 'vle', id2label: { 0: 'yes', 1: 'no' } })),
    'preprocessor_config.json': Buffer.from(JSON.stringify({ crop_size: 576 })),
    'spm.model': randomBytes(300_000),
    'pytorch_model.bin': randomBytes(2 << 20),
    'README.md': Buffer.from('# vle-like\n'),
  };
}

/** A sharded safetensors checkpoint: index + two shards, and a .bin that must not come along. */
export function shardedRepo(): Record<string, Buffer> {
  const index = { metadata: { total_size: 3 << 20 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors', 'c.weight': 'model-00002-of-00002.safetensors' } };
  return {
    'config.json': Buffer.from('{"model_type":"blip"}'),
    'model.safetensors.index.json': Buffer.from(JSON.stringify(index)),
    'model-00001-of-00002.safetensors': randomBytes(2 << 20),
    'model-00002-of-00002.safetensors': randomBytes(1 << 20),
    'pytorch_model.bin.index.json': Buffer.from(JSON.stringify({ weight_map: { 'a.weight': 'pytorch_model-00001-of-00001.bin' } })),
    'pytorch_model-00001-of-00001.bin': randomBytes(500_000),
  };
}

/** A fresh cache folder under test/output/ (ignored by git). */
export async function temporaryCache(): Promise<string> {
  const root = path.resolve('test/output/hub-client');
  await mkdir(root, { recursive: true });
  return mkdtemp(path.join(root, 'cache-'));
}

export async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Every file under a folder, relative and `/`-separated; empty when the folder does not exist. */
export async function listFiles(folder: string): Promise<string[]> {
  if (!existsSync(folder)) return [];
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .sort();
}

/** Checks the progress contract: a task start with the total first, percentages never backwards, 100 then ready. */
export function expectProgressContract(events: ProgressEvent[], total: number): void {
  const first = events.find((event) => event.status === 'start');
  if (first === undefined || first.status !== 'start' || first.file !== undefined || first.total !== total) {
    throw new Error(`the first start event should announce the total ${total}: ${JSON.stringify(first)}`);
  }
  const percentages = events.flatMap((event) => (event.status === 'progress' && event.progress !== undefined ? [event.progress] : []));
  for (let index = 1; index < percentages.length; index += 1) {
    if (percentages[index]! < percentages[index - 1]!) throw new Error(`progress went backwards: ${percentages[index - 1]} then ${percentages[index]}`);
  }
  if (percentages.at(-1) !== 100) throw new Error(`progress should end at 100, ended at ${percentages.at(-1)}`);
  if (events.at(-1)?.status !== 'ready') throw new Error(`the last event should be ready: ${JSON.stringify(events.at(-1))}`);
}
