// Checkpoints written by torch 2.13, safetensors and transformers themselves (models/vqa_llm_upstream/checkpoints.py)
// against what torch.load(weights_only=True) and safetensors.torch.load_file read from them: every tensor of every
// layout exactly, every bad file its CheckpointError; and damaged copies of the good files.
import { copyFile, mkdir, readdir, readFile, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openCheckpoint } from '../../dist/src/checkpoints/index.js';
import { CheckpointError } from '../../dist/src/errors/checkpoint-error.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from '../upstream/upstream-output.js';
import { tempFolder } from './checkpoint-builders.js';

type Value = number | string;

interface ExpectedTensor {
  shape: number[];
  sourceDtype: string;
  dtype: string;
  values: Value[];
}

interface Expected {
  cases: Record<string, { format: string; keys: string[]; tensors: Record<string, ExpectedTensor> }>;
  errors: Record<string, { reason: string; key?: string; global?: string }>;
}

const SPECIALS: Record<string, number> = { NaN: Number.NaN, Infinity: Number.POSITIVE_INFINITY, '-Infinity': Number.NEGATIVE_INFINITY };

const decode = (value: Value, dtype: string): number | bigint => (dtype === 'int64' ? BigInt(value) : typeof value === 'string' ? SPECIALS[value]! : value);

async function checkpointError(promise: Promise<unknown>): Promise<CheckpointError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  if (!CheckpointError.isInstance(error)) throw new Error(`expected a CheckpointError, got ${String(error)}`);
  return error;
}

describeUpstream('checkpoints', 'checkpoints written by torch and safetensors', () => {
  let expected: Expected;
  let scratch: Awaited<ReturnType<typeof tempFolder>>;

  beforeAll(async () => {
    expected = readUpstreamJson<Expected>('checkpoints', 'expected.json');
    scratch = await tempFolder();
  });

  afterAll(async () => {
    await scratch?.remove();
  });

  const cases = ['safetensors', 'pytorch', 'bigendian', 'state-dict', 'sharded-safetensors', 'sharded-pytorch'];
  for (const name of cases) {
    it(`should read ${name} exactly as torch does`, async () => {
      const reference = expected.cases[name]!;
      const checkpoint = await openCheckpoint(upstreamPath('checkpoints', name));
      try {
        expect(checkpoint.format).toBe(reference.format);
        if (name.startsWith('sharded')) expect([...checkpoint.keys].sort()).toEqual([...reference.keys].sort());
        else expect(checkpoint.keys).toEqual(reference.keys);
        for (const key of reference.keys) {
          const want = reference.tensors[key]!;
          const tensor = await checkpoint.read(key, { shape: want.shape });
          expect({ shape: tensor.shape, sourceDtype: tensor.sourceDtype, dtype: tensor.dtype }, key).toEqual({ shape: want.shape, sourceDtype: want.sourceDtype, dtype: want.dtype });
          const actual = Array.from(tensor.data as ArrayLike<number | bigint>);
          const values = want.values.map((value) => decode(value, want.dtype));
          const differing = actual.findIndex((value, index) => !Object.is(value, values[index]));
          expect(actual.length, key).toBe(values.length);
          expect(differing, `${key}[${differing}]: ${String(actual[differing])} != ${String(values[differing])}`).toBe(-1);
        }
      } finally {
        await checkpoint.close();
      }
    });
  }

  it('should give each bad file its CheckpointError, naming the file and the key or global', async () => {
    for (const [relative, want] of Object.entries(expected.errors)) {
      const file = upstreamPath('checkpoints', ...relative.split('/'));
      const error = await checkpointError(openCheckpoint(file));
      expect(error.reason, relative).toBe(want.reason);
      expect(error.file, relative).toBe(file);
      if (want.key) expect(error.key, relative).toBe(want.key);
      if (want.global) expect(error.message, relative).toContain(want.global);
    }
  });

  it('should give shape_mismatch for a shape the caller does not expect', async () => {
    const checkpoint = await openCheckpoint(upstreamPath('checkpoints', 'pytorch'));
    try {
      const error = await checkpointError(checkpoint.read('transposed', { shape: [3, 5] }));
      expect(error).toMatchObject({ reason: 'shape_mismatch', key: 'transposed', file: upstreamPath('checkpoints', 'pytorch', 'pytorch_model.bin') });
    } finally {
      await checkpoint.close();
    }
  });

  it('should give truncated for torch and safetensors files cut short', async () => {
    for (const source of [['pytorch', 'pytorch_model.bin'], ['safetensors', 'model.safetensors']]) {
      const original = upstreamPath('checkpoints', ...source);
      const size = (await readFile(original)).length;
      for (const fraction of [0, 0.01, 0.1, 0.5, 0.9, 0.99]) {
        const copy = path.join(scratch.dir, source[1]!);
        await copyFile(original, copy);
        await truncate(copy, Math.floor(size * fraction));
        expect((await checkpointError(openCheckpoint(copy))).reason, `${source[1]} cut at ${fraction}`).toBe('truncated');
      }
    }
  });

  it('should name the shard that is cut short or missing', async () => {
    const shards = path.join(scratch.dir, 'shards');
    await rm(shards, { recursive: true, force: true });
    await mkdir(shards);
    for (const name of await readdir(upstreamPath('checkpoints', 'sharded-pytorch'))) await copyFile(upstreamPath('checkpoints', 'sharded-pytorch', name), path.join(shards, name));
    const second = path.join(shards, 'pytorch_model-00002-of-00002.bin');
    await truncate(second, 100);
    expect(await checkpointError(openCheckpoint(shards))).toMatchObject({ reason: 'truncated', file: second });
    await rm(second);
    expect(await checkpointError(openCheckpoint(shards))).toMatchObject({ reason: 'missing_file', file: second });
  });

  it('should give out_of_bounds when a safetensors header points past the file', async () => {
    const bytes = await readFile(upstreamPath('checkpoints', 'safetensors', 'model.safetensors'));
    const length = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + length).toString()) as Record<string, { data_offsets: number[] }>;
    const [begin, end] = header.f32!.data_offsets as [number, number];
    header.f32!.data_offsets = [begin + bytes.length, end + bytes.length];
    const json = Buffer.from(JSON.stringify(header));
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    const file = await scratch.write('outside.safetensors', Buffer.concat([prefix, json, bytes.subarray(8 + length)]));
    expect(await checkpointError(openCheckpoint(file))).toMatchObject({ reason: 'out_of_bounds', key: 'f32', file });
  });
});
