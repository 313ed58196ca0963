// PyTorch zip checkpoints built in the test (pickles written opcode by opcode): views read to the right values,
// zip64 and unpadded zips, and every forbidden global, bad archive or bad view giving its CheckpointError.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../dist/src/checkpoints/index.js';
import { CheckpointError } from '../../dist/src/errors/checkpoint-error.js';
import { buildTorchZip, buildZip, f32, op, stateDictPickle, tempFolder, tensorOps, u16, type PickledTensor } from './checkpoint-builders.js';

let folder: Awaited<ReturnType<typeof tempFolder>>;

beforeAll(async () => {
  folder = await tempFolder();
});

afterAll(async () => {
  await folder.remove();
});

async function checkpointError(promise: Promise<unknown>): Promise<CheckpointError> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  if (!CheckpointError.isInstance(error)) throw new Error(`expected a CheckpointError, got ${String(error)}`);
  return error;
}

const storage = f32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
const views: PickledTensor[] = [
  { key: 'matrix', storageKey: '0', storageSize: 12, shape: [3, 4] },
  { key: 'tail', storageKey: '0', storageSize: 12, offset: 8, shape: [2, 2] },
  { key: 'transposed', storageKey: '0', storageSize: 12, shape: [4, 3], strides: [1, 4] },
  { key: 'column', storageKey: '0', storageSize: 12, offset: 1, shape: [3], strides: [4] },
  { key: 'expanded', storageKey: '0', storageSize: 12, offset: 5, shape: [2, 3], strides: [0, 1] },
  { key: 'scalar', storageKey: '0', storageSize: 12, offset: 11, shape: [], strides: [] },
  { key: 'half', storageKey: '1', storageSize: 2, storageClass: 'HalfStorage', shape: [2] },
];
const storages = { '0': storage, '1': u16(0x3c00, 0x3800) };

const write = (name: string, bytes: Uint8Array) => folder.write(name, bytes);

describe('pytorch zip', () => {
  for (const [name, options] of [['torch-aligned', {}], ['unpadded', { align: 0 }], ['zip64', { zip64: true }]] as const) {
    it(`should read views of shared storages (${name})`, async () => {
      const checkpoint = await openCheckpoint(await write(`${name}.bin`, buildTorchZip(stateDictPickle(views), storages, options)));
      try {
        expect(checkpoint.format).toBe('pytorch');
        expect(checkpoint.keys).toEqual(views.map((view) => view.key));
        const values = async (key: string) => Array.from((await checkpoint.read(key)).data);
        expect(await values('matrix')).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        expect(await values('tail')).toEqual([8, 9, 10, 11]);
        expect(await values('transposed')).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
        expect(await values('column')).toEqual([1, 5, 9]);
        expect(await values('expanded')).toEqual([5, 6, 7, 5, 6, 7]);
        expect(await values('scalar')).toEqual([11]);
        expect(await values('half')).toEqual([1, 0.5]);
        expect(checkpoint.info('transposed')).toMatchObject({ shape: [4, 3], sourceDtype: 'float32', dtype: 'float32' });
      } finally {
        await checkpoint.close();
      }
    });
  }

  it('should swap bytes of a big-endian archive', async () => {
    const big = new Uint8Array(storage);
    for (let start = 0; start < big.length; start += 4) big.subarray(start, start + 4).reverse();
    const checkpoint = await openCheckpoint(await write('big.bin', buildTorchZip(stateDictPickle(views.slice(0, 3)), { '0': big }, { byteorder: 'big' })));
    try {
      expect(Array.from((await checkpoint.read('transposed')).data)).toEqual([0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    } finally {
      await checkpoint.close();
    }
  });

  it('should accept a parameter and a state dict with _metadata', async () => {
    const tensor = views[0]!;
    const parameter = Buffer.concat([op.global('torch._utils', '_rebuild_parameter'), op.tuple(tensorOps(tensor), op.newFalse, op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce), op.reduce]);
    const metadata = Buffer.concat([op.emptyDict, op.unicode('_metadata'), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, Buffer.from('s')]);
    const pickle = Buffer.concat([op.proto(2), op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce, op.mark, op.unicode('p'), parameter, op.setItems, metadata, op.build, op.stop]);
    const checkpoint = await openCheckpoint(await write('parameter.bin', buildTorchZip(pickle, storages)));
    try {
      expect(checkpoint.keys).toEqual(['p']);
      expect((await checkpoint.read('p')).data).toHaveLength(12);
    } finally {
      await checkpoint.close();
    }
  });

  describe('forbidden globals', () => {
    const attack = (callable: Buffer) => Buffer.concat([op.proto(2), op.emptyDict, op.mark, op.unicode('weight'), callable, op.unicode('echo pwned'), Buffer.from([0x85]), op.reduce, op.setItems, op.stop]);
    const cases: [string, Buffer][] = [
      ['builtins.eval', attack(op.global('builtins', 'eval'))],
      ['os.system', attack(op.global('os', 'system'))],
      ['posix.system', attack(op.global('posix', 'system'))],
      ['os.system', Buffer.concat([op.proto(4), op.stackGlobal('os', 'system'), op.unicode('echo'), Buffer.from([0x85]), op.reduce, op.stop])],
      ['subprocess.check_output', Buffer.concat([op.proto(2), op.mark, op.unicode('echo'), op.inst('subprocess', 'check_output'), op.stop])],
      ['torch.load', attack(op.global('torch', 'load'))],
      ['torch._utils._rebuild_qtensor', attack(op.global('torch._utils', '_rebuild_qtensor'))],
      ['builtins.getattr', stateDictPickle(views.slice(0, 1), [op.unicode('x'), op.global('builtins', 'getattr'), op.emptyTuple, op.reduce])],
    ];
    for (const [global, pickle] of cases) {
      it(`should refuse ${global} naming it and the file`, async () => {
        const file = await write(`forbidden-${global}.bin`, buildTorchZip(pickle, storages));
        const error = await checkpointError(openCheckpoint(file));
        expect(error).toMatchObject({ reason: 'forbidden_global', file });
        expect(error.message).toContain(global);
      });
    }

    it('should refuse a huge integer at once rather than spend quadratic time building it', async () => {
      const length = Buffer.alloc(4);
      length.writeUInt32LE(200_000);
      const pickle = Buffer.concat([op.proto(2), Buffer.from([0x8b]), length, Buffer.alloc(200_000, 0x7f), op.stop]);
      const error = await checkpointError(openCheckpoint(await write('huge-long.bin', buildTorchZip(pickle, storages))));
      expect(error).toMatchObject({ reason: 'bad_header' });
      expect(error.message).toContain('200000-byte integer');
    });

    it('should refuse globals by extension code', async () => {
      const pickle = Buffer.concat([op.proto(2), Buffer.from([0x82, 1]), op.emptyTuple, op.reduce, op.stop]);
      expect(await checkpointError(openCheckpoint(await write('ext.bin', buildTorchZip(pickle, storages))))).toMatchObject({ reason: 'forbidden_global' });
    });

    it('should not let an allowed global be called into something else', async () => {
      // Calling a storage class is not on the list of things that run.
      const pickle = Buffer.concat([op.proto(2), op.global('torch', 'FloatStorage'), op.emptyTuple, op.reduce, op.stop]);
      expect(await checkpointError(openCheckpoint(await write('call-storage.bin', buildTorchZip(pickle, storages))))).toMatchObject({ reason: 'bad_header' });
    });
  });

  it('should give out_of_bounds for a view past its storage, naming the key', async () => {
    const cases: PickledTensor[] = [
      { key: 'long', storageKey: '0', storageSize: 12, shape: [13] },
      { key: 'offset', storageKey: '0', storageSize: 12, offset: 10, shape: [3] },
      { key: 'strided', storageKey: '0', storageSize: 12, shape: [3, 4], strides: [5, 1] },
      { key: 'claimed', storageKey: '0', storageSize: 100, shape: [20] },
    ];
    for (const tensor of cases) {
      const file = await write(`oob-${tensor.key}.bin`, buildTorchZip(stateDictPickle([tensor]), storages));
      expect(await checkpointError(openCheckpoint(file)), tensor.key).toMatchObject({ reason: 'out_of_bounds', key: tensor.key, file });
    }
  });

  it('should give unknown_dtype for a storage class it does not convert', async () => {
    const tensor = { key: 'complex', storageKey: '0', storageSize: 6, storageClass: 'ComplexFloatStorage', shape: [6] };
    const file = await write('complex.bin', buildTorchZip(stateDictPickle([tensor]), storages));
    expect(await checkpointError(openCheckpoint(file))).toMatchObject({ reason: 'unknown_dtype', key: 'complex', file });
  });

  it('should give legacy_format for a bare pickle and a tar', async () => {
    const legacy = await write('legacy.bin', Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]));
    const error = await checkpointError(openCheckpoint(legacy));
    expect(error).toMatchObject({ reason: 'legacy_format', file: legacy });
    expect(error.hint).toContain('safetensors');
    const tar = Buffer.alloc(1024);
    tar.write('ustar', 257);
    expect(await checkpointError(openCheckpoint(await write('legacy.tar', tar)))).toMatchObject({ reason: 'legacy_format' });
    expect(await checkpointError(openCheckpoint(await write('text.bin', 'hello')))).toMatchObject({ reason: 'bad_header' });
  });

  it('should give truncated for a zip cut anywhere, and never hang', async () => {
    const bytes = buildTorchZip(stateDictPickle(views), storages);
    for (let length = 0; length < bytes.length; length += 7) {
      const file = await write('cut.bin', bytes.subarray(0, length));
      const error = await checkpointError(openCheckpoint(file));
      expect(error.reason, `cut at ${length}`).toBe('truncated');
    }
  });

  it('should give bad_header for archives that are not state dicts', async () => {
    const cases: [string, Buffer][] = [
      ['compressed', buildTorchZip(stateDictPickle(views), storages, { method: 8 })],
      ['no pickle', buildZip({ 'archive/data/0': storage })],
      ['two pickles', buildZip({ 'a/data.pkl': stateDictPickle([]), 'b/data.pkl': stateDictPickle([]) })],
      ['missing storage', buildTorchZip(stateDictPickle(views), { '0': storage })],
      ['not a dict', buildTorchZip(Buffer.concat([op.proto(2), op.int(3), op.stop]), storages)],
      ['not a tensor', buildTorchZip(Buffer.concat([op.proto(2), op.emptyDict, op.unicode('epoch'), op.int(3), Buffer.from('s'), op.stop]), storages)],
      ['unknown opcode', buildTorchZip(Buffer.concat([op.proto(2), Buffer.from([0xff]), op.stop]), storages)],
      ['byteorder', buildTorchZip(stateDictPickle(views), storages, { byteorder: 'middle' })],
      ['stack underflow', buildTorchZip(Buffer.concat([op.proto(2), op.reduce, op.stop]), storages)],
    ];
    for (const [name, bytes] of cases) {
      const file = await write(`bad-${name}.bin`, bytes);
      expect(await checkpointError(openCheckpoint(file)), name).toMatchObject({ reason: 'bad_header', file });
    }
  });

  it('should give truncated for a pickle without STOP', async () => {
    const pickle = stateDictPickle(views);
    const file = await write('no-stop.bin', buildTorchZip(pickle.subarray(0, pickle.length - 1), storages));
    expect(await checkpointError(openCheckpoint(file))).toMatchObject({ reason: 'truncated', file });
  });

  it('should fail with CheckpointErrors only, whatever byte of the pickle is damaged', async () => {
    const pickle = stateDictPickle(views);
    let random = 12345;
    const next = () => (random = (random * 1103515245 + 12345) % 2 ** 31);
    for (let trial = 0; trial < 300; trial += 1) {
      const damaged = Buffer.from(pickle);
      damaged[next() % damaged.length] = next() % 256;
      const file = await write('damaged.bin', buildTorchZip(damaged, storages));
      const outcome = await openCheckpoint(file).then(
        async (checkpoint) => {
          for (const key of checkpoint.keys) await checkpoint.read(key);
          await checkpoint.close();
          return undefined;
        },
        (error: unknown) => error,
      );
      if (outcome !== undefined && !CheckpointError.isInstance(outcome)) throw outcome;
    }
  });
});
