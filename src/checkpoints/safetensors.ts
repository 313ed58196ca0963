// The index of one .safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
// dtype, shape and byte range within the data that follows. https://github.com/huggingface/safetensors
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../errors/checkpoint-error.js';
import { elementCount, itemSize } from './dtypes.js';
import { readAt } from './read-bytes.js';
import type { SourceDtype, TensorLocation } from './types.js';

// The safetensors library refuses headers above 100 MB; so do we, before allocating them.
const MAX_HEADER_BYTES = 100_000_000;

const DTYPES: Record<string, SourceDtype> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  F64: 'float64',
  I64: 'int64',
  I32: 'int32',
  I16: 'int16',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

interface HeaderEntry {
  key: string;
  sourceDtype: SourceDtype;
  shape: number[];
  begin: number;
  end: number;
}

const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

function parseEntry(key: string, value: unknown, file: string): HeaderEntry {
  const bad = (what: string) => new CheckpointError('bad_header', `${file}: tensor ${JSON.stringify(key)} ${what}.`, { file, key });
  if (typeof value !== 'object' || value === null) throw bad('has no header object');
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string') throw bad('has no dtype');
  const sourceDtype = DTYPES[dtype];
  if (!sourceDtype) {
    throw new CheckpointError('unknown_dtype', `${file}: tensor ${JSON.stringify(key)} has dtype ${JSON.stringify(dtype)}, which the reader does not know (known: ${Object.keys(DTYPES).join(', ')}).`, { file, key });
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad(`has a bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw bad(`has bad data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const bytes = elementCount(shape) * itemSize(sourceDtype);
  if (end - begin !== bytes) throw bad(`spans ${end - begin} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${bytes}`);
  return { key, sourceDtype, shape, begin, end };
}

/**
 * Which entry the file lacks. A header whose byte ranges tile the data from 0 (as safetensors writes them) in a
 * shorter file was cut off: `truncated`. A range past the data otherwise points out of the file: `out_of_bounds`.
 */
function checkBounds(entries: HeaderEntry[], dataBytes: number, file: string): void {
  const outside = entries.filter((entry) => entry.end > dataBytes);
  if (outside.length === 0) return;
  const sorted = [...entries].sort((left, right) => left.begin - right.begin || left.end - right.end);
  const tiled = sorted.every((entry, index) => entry.begin === (index === 0 ? 0 : sorted[index - 1]!.end));
  const first = outside.reduce((lowest, entry) => (entry.begin < lowest.begin ? entry : lowest));
  const range = `bytes ${first.begin}..${first.end} of a ${dataBytes}-byte data section`;
  if (tiled) {
    throw new CheckpointError('truncated', `${file} is truncated: tensor ${JSON.stringify(first.key)} needs ${range}.`, { file, key: first.key });
  }
  throw new CheckpointError('out_of_bounds', `${file}: tensor ${JSON.stringify(first.key)} points past the end of the file (${range}).`, { file, key: first.key });
}

/**
 * Reads and checks the header of a .safetensors file: every tensor's type is known, its byte range matches its
 * shape and lies inside the file.
 */
export async function readSafetensorsIndex(handle: FileHandle, file: string): Promise<TensorLocation[]> {
  const { size } = await handle.stat();
  if (size < 8) throw new CheckpointError('truncated', `${file} is truncated: ${size} bytes, not even a safetensors header length.`, { file });
  const length = new DataView((await readAt(handle, 0, 8, { file })).buffer).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) throw new CheckpointError('bad_header', `${file}: a ${length}-byte safetensors header is not plausible (not a safetensors file?).`, { file });
  const headerBytes = Number(length);
  if (8 + headerBytes > size) throw new CheckpointError('truncated', `${file} is truncated: its ${headerBytes}-byte header runs past the end of the ${size}-byte file.`, { file });
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await readAt(handle, 8, headerBytes, { file })));
  } catch (error) {
    throw new CheckpointError('bad_header', `${file}: the safetensors header is not valid JSON.`, { file, cause: error });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new CheckpointError('bad_header', `${file}: the safetensors header is not a JSON object.`, { file });
  }
  const entries = Object.entries(header)
    .filter(([key]) => key !== '__metadata__')
    .map(([key, value]) => parseEntry(key, value, file));
  const dataStart = 8 + headerBytes;
  checkBounds(entries, size - dataStart, file);
  return entries
    .sort((left, right) => left.begin - right.begin)
    .map(({ key, sourceDtype, shape, begin }) => ({ key, file, sourceDtype, shape, position: dataStart + begin, littleEndian: true }));
}
