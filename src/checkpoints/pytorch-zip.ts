// The index of one PyTorch checkpoint in torch.save's zip format (torch >= 1.6): `<archive>/data.pkl` describes the
// state dict, `<archive>/data/<key>` holds each storage's raw bytes, `<archive>/byteorder` says their byte order.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../errors/checkpoint-error.js';
import { elementCount, itemSize } from './dtypes.js';
import { readAt } from './read-bytes.js';
import { isContiguous, viewSpan } from './read-tensor.js';
import { readTorchPickle, SUPPORTED_DTYPES, type TensorRef } from './torch-pickle.js';
import type { SourceDtype, TensorLocation } from './types.js';
import { readZipDirectory, ZIP_MAGIC, type ZipEntry } from './zip-directory.js';

// The pickle is read whole; a state dict's is kilobytes to a few megabytes.
const MAX_PICKLE_BYTES = 1 << 30;
// protocol 2, LONG1 of 10 bytes: torch's legacy magic number 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

const startsWith = (bytes: Uint8Array, prefix: number[]) => prefix.every((byte, index) => bytes[index] === byte);

/** Refuses anything but a zip, naming legacy formats (bare pickle, tar) for what they are. */
async function checkContainer(handle: FileHandle, file: string, size: number): Promise<void> {
  if (size === 0) throw new CheckpointError('truncated', `${file} is empty.`, { file });
  const head = await readAt(handle, 0, Math.min(size, 262), { file });
  if (startsWith(head, ZIP_MAGIC)) return;
  const tar = new TextDecoder('latin1').decode(head.subarray(257, 262)) === 'ustar';
  if (startsWith(head, LEGACY_MAGIC) || head[0] === 0x80 || tar) {
    throw new CheckpointError(
      'legacy_format',
      `${file} is a legacy PyTorch checkpoint (${tar ? 'tar' : 'a bare pickle'}, torch.save before 1.6 or with _use_new_zipfile_serialization=False), which the reader does not read.`,
      { file, hint: 'Re-save it with a current torch (torch.save(torch.load(path, weights_only=True), path)) or convert it to safetensors.' },
    );
  }
  throw new CheckpointError('bad_header', `${file} is not a PyTorch zip checkpoint (it does not start like a zip file).`, { file });
}

async function readSmallEntry(handle: FileHandle, file: string, entry: ZipEntry | undefined): Promise<string | undefined> {
  if (!entry) return undefined;
  if (entry.size > 64) throw new CheckpointError('bad_header', `${file}: zip entry ${entry.name} is implausibly large.`, { file });
  return new TextDecoder().decode(await readAt(handle, entry.dataOffset, entry.size, { file })).trim();
}

function locate(key: string, tensor: TensorRef, entries: Map<string, ZipEntry>, prefix: string, file: string, littleEndian: boolean): TensorLocation {
  const { storage, dtypeName, storageOffset, shape, strides } = tensor;
  if (!SUPPORTED_DTYPES.has(dtypeName)) {
    throw new CheckpointError('unknown_dtype', `${file}: tensor ${JSON.stringify(key)} has dtype ${dtypeName}, which the reader does not know (known: ${[...SUPPORTED_DTYPES].join(', ')}).`, { file, key });
  }
  const sourceDtype = dtypeName as SourceDtype;
  const size = itemSize(sourceDtype);
  const entry = entries.get(`${prefix}data/${storage.key}`);
  if (!entry) throw new CheckpointError('bad_header', `${file}: storage ${storage.key} of tensor ${JSON.stringify(key)} is not in the archive.`, { file, key });
  const storageItem = storage.untyped ? 1 : SUPPORTED_DTYPES.has(storage.dtypeName) ? itemSize(storage.dtypeName as SourceDtype) : size;
  const storageBytes = Math.min(entry.size, storage.size * storageItem);
  const endBytes = (storageOffset + viewSpan(shape, strides)) * size;
  if (!Number.isSafeInteger(elementCount(shape)) || !Number.isSafeInteger(endBytes) || endBytes > storageBytes) {
    throw new CheckpointError(
      'out_of_bounds',
      `${file}: tensor ${JSON.stringify(key)} (${dtypeName} ${JSON.stringify(shape)}, offset ${storageOffset}, strides ${JSON.stringify(strides)}) runs past its storage ${storage.key} (${storageBytes} bytes, ${endBytes} needed).`,
      { file, key },
    );
  }
  const contiguous = isContiguous(shape, strides);
  return { key, file, sourceDtype, shape, position: entry.dataOffset + storageOffset * size, ...(contiguous ? {} : { strides }), littleEndian };
}

/** Reads and checks the index of a PyTorch zip checkpoint: the pickle (allow-listed globals only), every storage. */
export async function readPytorchIndex(handle: FileHandle, file: string): Promise<TensorLocation[]> {
  const { size } = await handle.stat();
  await checkContainer(handle, file, size);
  const entries = await readZipDirectory(handle, file);
  const pickles = [...entries.values()].filter((entry) => /^[^/]+\/data\.pkl$/.test(entry.name));
  if (pickles.length !== 1) throw new CheckpointError('bad_header', `${file}: a PyTorch checkpoint holds one <archive>/data.pkl, this zip ${pickles.length}.`, { file });
  const pickle = pickles[0]!;
  const prefix = pickle.name.slice(0, -'data.pkl'.length);
  const byteorder = (await readSmallEntry(handle, file, entries.get(`${prefix}byteorder`))) ?? 'little';
  if (byteorder !== 'little' && byteorder !== 'big') throw new CheckpointError('bad_header', `${file}: unknown byte order ${JSON.stringify(byteorder)}.`, { file });
  const version = await readSmallEntry(handle, file, entries.get(`${prefix}version`));
  if (version !== undefined && !/^\d+$/.test(version)) throw new CheckpointError('bad_header', `${file}: bad archive version ${JSON.stringify(version)}.`, { file });
  if (pickle.size > MAX_PICKLE_BYTES) throw new CheckpointError('bad_header', `${file}: a ${pickle.size}-byte data.pkl is not a state dict's.`, { file });
  const tensors = readTorchPickle(await readAt(handle, pickle.dataOffset, pickle.size, { file }), file);
  return [...tensors].map(([key, tensor]) => locate(key, tensor, entries, prefix, file, byteorder === 'little'));
}
