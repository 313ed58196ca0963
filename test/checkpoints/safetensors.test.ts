// safetensors files built in the test: every dtype read to exact values, and every way a header or file can be
// wrong giving a CheckpointError that names the file and the tensor.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../dist/src/checkpoints/index.js';
import { CheckpointError } from '../../dist/src/errors/checkpoint-error.js';
import { buildSafetensors, f32, f64, i64, tempFolder, u16 } from './checkpoint-builders.js';

let folder: Awaited<ReturnType<typeof tempFolder>>;

beforeAll(async () => {
  folder = await tempFolder();
});

afterAll(async () => {
  await folder.remove();
});

/** The CheckpointError `promise` rejects with (fails the test on anything else). */
async function checkpointError(promise: Promise<unknown>): Promise<CheckpointError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  if (!CheckpointError.isInstance(error)) throw new Error(`expected a CheckpointError, got ${String(error)}`);
  return error;
}

const dtypes = {
  weight: { dtype: 'F32', shape: [2, 2], data: f32(1.5, -2, 0.25, 3e-38) },
  half: { dtype: 'F16', shape: [6], data: u16(0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x8000) },
  brain: { dtype: 'BF16', shape: [3], data: u16(0x3f80, 0xc040, 0x7fc0) },
  double: { dtype: 'F64', shape: [2], data: f64(1 / 3, -1e300) },
  ids: { dtype: 'I64', shape: [1, 3], data: i64(0n, -5n, 2n ** 62n + 1n) },
  small: { dtype: 'I8', shape: [2], data: new Uint8Array([0xff, 0x7f]) },
  flags: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 2]) },
  scalar: { dtype: 'F32', shape: [], data: f32(7) },
  none: { dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
};

describe('safetensors', () => {
  it('should read every dtype to exact values, floats as float32', async () => {
    const checkpoint = await openCheckpoint(await folder.write('dtypes.safetensors', buildSafetensors(dtypes)));
    try {
      expect(checkpoint.format).toBe('safetensors');
      expect(checkpoint.keys).toEqual(Object.keys(dtypes));
      expect(Array.from((await checkpoint.read('weight')).data)).toEqual([1.5, -2, 0.25, Math.fround(3e-38)]);
      expect(Array.from((await checkpoint.read('half')).data)).toEqual([1, -2, Infinity, -Infinity, 2 ** -24, -0]);
      expect(Array.from((await checkpoint.read('brain')).data)).toEqual([1, -3, NaN]);
      expect(Array.from((await checkpoint.read('double')).data)).toEqual([Math.fround(1 / 3), -Infinity]);
      const ids = await checkpoint.read('ids');
      expect(ids.data).toBeInstanceOf(BigInt64Array);
      expect(Array.from(ids.data)).toEqual([0n, -5n, 2n ** 62n + 1n]);
      expect(ids).toMatchObject({ dtype: 'int64', sourceDtype: 'int64', shape: [1, 3] });
      expect(Array.from((await checkpoint.read('small')).data)).toEqual([-1, 127]);
      expect(Array.from((await checkpoint.read('flags')).data)).toEqual([1, 0, 1]);
      const scalar = await checkpoint.read('scalar');
      expect(scalar.shape).toEqual([]);
      expect(Array.from(scalar.data)).toEqual([7]);
      expect((await checkpoint.read('none')).data).toHaveLength(0);
      expect(checkpoint.info('half')).toEqual({ key: 'half', sourceDtype: 'float16', dtype: 'float32', shape: [6], file: checkpoint.files[0] });
    } finally {
      await checkpoint.close();
    }
  });

  it('should check the shape the caller expects', async () => {
    const checkpoint = await openCheckpoint(await folder.write('shape.safetensors', buildSafetensors(dtypes)));
    try {
      await expect(checkpoint.read('weight', { shape: [2, 2] })).resolves.toBeDefined();
      const error = await checkpointError(checkpoint.read('weight', { shape: [4] }));
      expect(error).toMatchObject({ reason: 'shape_mismatch', key: 'weight', file: checkpoint.files[0] });
      expect(error.message).toContain('[2,2]');
    } finally {
      await checkpoint.close();
    }
  });

  it('should name missing and unexpected keys', async () => {
    const checkpoint = await openCheckpoint(await folder.write('keys.safetensors', buildSafetensors(dtypes)));
    try {
      expect(() => checkpoint.info('absent')).toThrow(expect.objectContaining({ reason: 'missing_key', key: 'absent' }));
      await expect(checkpoint.read('absent')).rejects.toMatchObject({ reason: 'missing_key', key: 'absent' });
      expect(() => checkpoint.expectKeys(['weight', 'absent'], { allowUnexpected: true })).toThrow(expect.objectContaining({ reason: 'missing_key', key: 'absent' }));
      expect(() => checkpoint.expectKeys(['weight'])).toThrow(expect.objectContaining({ reason: 'unexpected_key', key: 'half', file: checkpoint.files[0] }));
      expect(() => checkpoint.expectKeys(['weight'], { allowUnexpected: (key) => key !== 'half' })).toThrow(expect.objectContaining({ reason: 'unexpected_key', key: 'half' }));
      expect(() => checkpoint.expectKeys(Object.keys(dtypes))).not.toThrow();
    } finally {
      await checkpoint.close();
    }
  });

  it('should refuse reads after close', async () => {
    const checkpoint = await openCheckpoint(await folder.write('closed.safetensors', buildSafetensors(dtypes)));
    await checkpoint.close();
    await checkpoint.close();
    await expect(checkpoint.read('weight')).rejects.toMatchObject({ reason: 'closed', key: 'weight' });
  });

  it('should let reads under way finish when closed', async () => {
    const checkpoint = await openCheckpoint(await folder.write('closing.safetensors', buildSafetensors(dtypes)));
    const reads = checkpoint.keys.map((key) => checkpoint.read(key));
    await checkpoint.close();
    expect(await Promise.all(reads)).toHaveLength(checkpoint.keys.length);
  });

  it('should give truncated for a file cut anywhere', async () => {
    const bytes = buildSafetensors(dtypes);
    for (const length of [0, 5, 8, 20, bytes.length - 100, bytes.length - 1]) {
      const file = await folder.write(`cut-${length}.safetensors`, bytes.subarray(0, length));
      const error = await checkpointError(openCheckpoint(file));
      expect(error, `cut at ${length}`).toMatchObject({ reason: 'truncated', file });
    }
    const error = await checkpointError(openCheckpoint(await folder.write('cut-last.safetensors', bytes.subarray(0, bytes.length - 1))));
    expect(error.key).toBe('scalar');
  });

  it('should give out_of_bounds for a tensor that points past the file', async () => {
    const bytes = buildSafetensors(dtypes, (header) => {
      (header.weight as { data_offsets: number[] }).data_offsets = [4000, 4016];
    });
    const file = await folder.write('outside.safetensors', bytes);
    expect(await checkpointError(openCheckpoint(file))).toMatchObject({ reason: 'out_of_bounds', key: 'weight', file });
  });

  it('should give unknown_dtype naming the tensor', async () => {
    const file = await folder.write('dtype.safetensors', buildSafetensors({ ...dtypes, odd: { dtype: 'F8_E4M3', shape: [2], data: new Uint8Array(2) } }));
    const error = await checkpointError(openCheckpoint(file));
    expect(error).toMatchObject({ reason: 'unknown_dtype', key: 'odd', file });
    expect(error.message).toContain('F8_E4M3');
  });

  it('should give bad_header for headers that do not add up', async () => {
    const cases: [string, (header: Record<string, unknown>) => void][] = [
      ['size', (header) => { (header.weight as { shape: number[] }).shape = [3, 2]; }],
      ['offsets', (header) => { (header.weight as { data_offsets: number[] }).data_offsets = [16, 0]; }],
      ['shape', (header) => { (header.weight as { shape: unknown }).shape = [2, -2]; }],
      ['entry', (header) => { header.weight = 'F32'; }],
    ];
    for (const [name, patch] of cases) {
      const file = await folder.write(`bad-${name}.safetensors`, buildSafetensors(dtypes, patch));
      expect(await checkpointError(openCheckpoint(file)), name).toMatchObject({ reason: 'bad_header', key: 'weight', file });
    }
    const json = Buffer.from('{"a": ');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(json.length));
    const file = await folder.write('bad-json.safetensors', Buffer.concat([length, json]));
    expect(await checkpointError(openCheckpoint(file))).toMatchObject({ reason: 'bad_header', file });
    const huge = Buffer.alloc(16);
    huge.writeBigUInt64LE(2n ** 60n);
    expect(await checkpointError(openCheckpoint(await folder.write('bad-length.safetensors', huge)))).toMatchObject({ reason: 'bad_header' });
  });
});

describe('openCheckpoint', () => {
  it('should find model.safetensors in a folder and prefer it over pytorch_model.bin', async () => {
    await folder.write('model.safetensors', buildSafetensors({ weight: dtypes.weight }));
    await folder.write('pytorch_model.bin', 'not read');
    const checkpoint = await openCheckpoint(folder.dir);
    try {
      expect(checkpoint.path).toBe(folder.dir);
      expect(checkpoint.keys).toEqual(['weight']);
    } finally {
      await checkpoint.close();
    }
  });

  it('should give missing_file for a missing path or an empty folder', async () => {
    expect(await checkpointError(openCheckpoint(`${folder.dir}/nothing-here`))).toMatchObject({ reason: 'missing_file' });
    const empty = await tempFolder();
    try {
      const error = await checkpointError(openCheckpoint(empty.dir));
      expect(error).toMatchObject({ reason: 'missing_file', file: empty.dir });
      expect(error.message).toContain('model.safetensors');
    } finally {
      await empty.remove();
    }
  });
});

describe('sharded safetensors', () => {
  async function shardedFolder(weightMap: Record<string, string>) {
    const shards = await tempFolder();
    await shards.write('model-00001-of-00002.safetensors', buildSafetensors({ a: dtypes.weight, b: dtypes.half }));
    await shards.write('model-00002-of-00002.safetensors', buildSafetensors({ c: dtypes.ids }));
    await shards.write('model.safetensors.index.json', JSON.stringify({ metadata: { total_size: 60 }, weight_map: weightMap }));
    return shards;
  }
  const goodMap = { a: 'model-00001-of-00002.safetensors', b: 'model-00001-of-00002.safetensors', c: 'model-00002-of-00002.safetensors' };

  it('should refuse a safetensors index that names a shard of another format, so that no pickle is read', async () => {
    const shards = await shardedFolder({ ...goodMap, c: 'pytorch_model-00002-of-00002.bin' });
    try {
      const error = await openCheckpoint(shards.dir).then(() => undefined, (caught: unknown) => caught);
      expect(error).toMatchObject({ reason: 'bad_header', key: 'c' });
      expect((error as Error).message).toContain('another format');
    } finally {
      await shards.remove();
    }
  });

  it('should read every shard through the index', async () => {
    const shards = await shardedFolder(goodMap);
    const checkpoint = await openCheckpoint(shards.dir);
    try {
      expect(checkpoint.keys).toEqual(['a', 'b', 'c']);
      expect(checkpoint.files).toHaveLength(2);
      expect(checkpoint.info('c').file).toMatch(/model-00002-of-00002\.safetensors$/);
      expect(Array.from((await checkpoint.read('c')).data)).toEqual([0n, -5n, 2n ** 62n + 1n]);
    } finally {
      await checkpoint.close();
      await shards.remove();
    }
  });

  it('should name the key and shard the index promises but the shard lacks', async () => {
    const shards = await shardedFolder({ ...goodMap, d: 'model-00002-of-00002.safetensors' });
    try {
      const error = await checkpointError(openCheckpoint(shards.dir));
      expect(error).toMatchObject({ reason: 'missing_key', key: 'd' });
      expect(error.file).toMatch(/model-00002-of-00002\.safetensors$/);
    } finally {
      await shards.remove();
    }
  });

  it('should give missing_file for a shard that is not there', async () => {
    const shards = await shardedFolder({ ...goodMap, d: 'model-00003-of-00003.safetensors' });
    try {
      expect(await checkpointError(openCheckpoint(shards.dir))).toMatchObject({ reason: 'missing_file' });
    } finally {
      await shards.remove();
    }
  });

  it('should refuse shard names outside the folder', async () => {
    for (const name of ['../model.safetensors', '/etc/passwd', '..', 'sub\\x.safetensors']) {
      const shards = await shardedFolder({ ...goodMap, a: name });
      try {
        expect(await checkpointError(openCheckpoint(shards.dir)), name).toMatchObject({ reason: 'bad_header', key: 'a' });
      } finally {
        await shards.remove();
      }
    }
  });
});
