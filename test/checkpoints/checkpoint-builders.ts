// Checkpoint files built byte by byte in the tests: safetensors, pickles opcode by opcode, and zips (STORED, with
// torch's 64-byte alignment or none, optionally with zip64 records), so that every corruption can be aimed exactly.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SafetensorsTensor {
  dtype: string;
  shape: number[];
  data: Uint8Array;
}

/** A .safetensors file: tensors laid out in the given order, header padded to 8 bytes as the library does. */
export function buildSafetensors(tensors: Record<string, SafetensorsTensor>, patch?: (header: Record<string, unknown>) => void): Buffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [key, tensor] of Object.entries(tensors)) {
    header[key] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + tensor.data.length] };
    offset += tensor.data.length;
  }
  patch?.(header);
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + json.length) % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, Buffer.from(json), ...Object.values(tensors).map((tensor) => tensor.data)]);
}

export const f32 = (...values: number[]) => new Uint8Array(Float32Array.from(values).buffer);
export const u16 = (...values: number[]) => new Uint8Array(Uint16Array.from(values).buffer);
export const f64 = (...values: number[]) => new Uint8Array(Float64Array.from(values).buffer);
export const i64 = (...values: bigint[]) => new Uint8Array(BigInt64Array.from(values).buffer);

// ---------------------------------------------------------------------------------------------------------------
// Pickles

const ascii = (text: string) => Buffer.from(text, 'latin1');

export const op = {
  proto: (version: number) => Buffer.from([0x80, version]),
  global: (module: string, name: string) => ascii(`c${module}\n${name}\n`),
  stackGlobal: (module: string, name: string) => Buffer.concat([op.shortUnicode(module), op.shortUnicode(name), Buffer.from([0x93])]),
  inst: (module: string, name: string) => ascii(`i${module}\n${name}\n`),
  unicode: (text: string) => {
    const data = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(data.length);
    return Buffer.concat([Buffer.from('X'), length, data]);
  },
  shortUnicode: (text: string) => Buffer.concat([Buffer.from([0x8c, Buffer.byteLength(text)]), Buffer.from(text)]),
  int: (value: number) => {
    const data = Buffer.alloc(5);
    data[0] = 0x4a;
    data.writeInt32LE(value, 1);
    return data;
  },
  tuple: (...items: Buffer[]) => Buffer.concat([ascii('('), ...items, ascii('t')]),
  mark: ascii('('),
  emptyDict: ascii('}'),
  emptyTuple: ascii(')'),
  setItems: ascii('u'),
  reduce: ascii('R'),
  build: ascii('b'),
  binPersId: ascii('Q'),
  newFalse: Buffer.from([0x89]),
  stop: ascii('.'),
};

export interface PickledTensor {
  key: string;
  storageClass?: string;
  storageKey: string;
  storageSize: number;
  offset?: number;
  shape: number[];
  strides?: number[];
}

const rowMajor = (shape: number[]) => shape.map((_, axis) => shape.slice(axis + 1).reduce((product, size) => product * size, 1));

/** `_rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())`, as torch.save writes it. */
export function tensorOps(tensor: PickledTensor, rebuild = '_rebuild_tensor_v2'): Buffer {
  const storage = op.tuple(op.unicode('storage'), op.global('torch', tensor.storageClass ?? 'FloatStorage'), op.unicode(tensor.storageKey), op.unicode('cpu'), op.int(tensor.storageSize));
  return Buffer.concat([
    op.global('torch._utils', rebuild),
    op.tuple(
      storage,
      op.binPersId,
      op.int(tensor.offset ?? 0),
      op.tuple(...tensor.shape.map(op.int)),
      op.tuple(...(tensor.strides ?? rowMajor(tensor.shape)).map(op.int)),
      op.newFalse,
      op.global('collections', 'OrderedDict'),
      op.emptyTuple,
      op.reduce,
    ),
    op.reduce,
  ]);
}

/** A state dict pickle `{key: tensor, ...}`; `extra` goes inside the dict's SETITEMS, before the tensors. */
export function stateDictPickle(tensors: PickledTensor[], extra: Buffer[] = []): Buffer {
  return Buffer.concat([op.proto(2), op.emptyDict, op.mark, ...extra, ...tensors.flatMap((tensor) => [op.unicode(tensor.key), tensorOps(tensor)]), op.setItems, op.stop]);
}

// ---------------------------------------------------------------------------------------------------------------
// Zips

export interface ZipOptions {
  /** Pad each entry's data to this alignment with an extra field, as torch does (64); default none. */
  align?: number;
  /** Write zip64 records and 0xFFFFFFFF markers, as for a file over 4 GiB. */
  zip64?: boolean;
  /** Compression method to claim (8 = deflate; the data is not actually compressed). */
  method?: number;
}

/** A STORED zip of the given entries. CRCs are left 0: the readers do not check them. */
export function buildZip(entries: Record<string, Uint8Array>, options: ZipOptions = {}): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of Object.entries(entries)) {
    const nameBytes = Buffer.from(name);
    const base = offset + 30 + nameBytes.length;
    const padding = options.align ? (options.align - ((base + 4) % options.align)) % options.align : 0;
    const extra = options.align ? Buffer.alloc(4 + padding) : Buffer.alloc(0);
    if (options.align) {
      extra.writeUInt16LE(0x4246, 0);
      extra.writeUInt16LE(padding, 2);
    }
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(options.method ?? 0, 8);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    parts.push(local, nameBytes, extra, Buffer.from(data));
    const zip64Extra = Buffer.alloc(options.zip64 ? 28 : 0);
    if (options.zip64) {
      zip64Extra.writeUInt16LE(1, 0);
      zip64Extra.writeUInt16LE(24, 2);
      zip64Extra.writeBigUInt64LE(BigInt(data.length), 4);
      zip64Extra.writeBigUInt64LE(BigInt(data.length), 12);
      zip64Extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE(options.method ?? 0, 10);
    entry.writeUInt32LE(options.zip64 ? 0xffffffff : data.length, 20);
    entry.writeUInt32LE(options.zip64 ? 0xffffffff : data.length, 24);
    entry.writeUInt16LE(nameBytes.length, 28);
    entry.writeUInt16LE(zip64Extra.length, 30);
    entry.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 42);
    central.push(entry, nameBytes, zip64Extra);
    offset += 30 + nameBytes.length + extra.length + data.length;
  }
  const directory = Buffer.concat(central);
  const count = Object.keys(entries).length;
  const tail: Buffer[] = [];
  if (options.zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4);
    record.writeBigUInt64LE(BigInt(count), 24);
    record.writeBigUInt64LE(BigInt(count), 32);
    record.writeBigUInt64LE(BigInt(directory.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + directory.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(options.zip64 ? 0xffff : count, 8);
  end.writeUInt16LE(options.zip64 ? 0xffff : count, 10);
  end.writeUInt32LE(options.zip64 ? 0xffffffff : directory.length, 12);
  end.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 16);
  return Buffer.concat([...parts, directory, ...tail, end]);
}

/** A torch-style zip: `archive/data.pkl`, `archive/byteorder`, `archive/version`, `archive/data/<key>`. */
export function buildTorchZip(pickle: Uint8Array, storages: Record<string, Uint8Array>, options: ZipOptions & { byteorder?: string } = {}): Buffer {
  const entries: Record<string, Uint8Array> = { 'archive/data.pkl': pickle, 'archive/byteorder': Buffer.from(options.byteorder ?? 'little'), 'archive/version': Buffer.from('3\n') };
  for (const [key, data] of Object.entries(storages)) entries[`archive/data/${key}`] = data;
  return buildZip(entries, { align: 64, ...options });
}

// ---------------------------------------------------------------------------------------------------------------

/** A temporary folder for one test file; `write` puts a file in it and returns its path. */
export async function tempFolder(): Promise<{ dir: string; write: (name: string, data: Uint8Array | string) => Promise<string>; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'vqa-llm-checkpoints-'));
  return {
    dir,
    write: async (name, data) => {
      const file = path.join(dir, name);
      await writeFile(file, data);
      return file;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
