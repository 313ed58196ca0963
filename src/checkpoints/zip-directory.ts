// The central directory of a zip file, enough to find where each STORED entry's bytes lie (torch.save writes every
// entry uncompressed, and zip64 records for large files). Nothing is decompressed; nothing but bytes is read.
// Written here rather than taken from a zip library: the job is ~150 lines of bounds-checked offsets, and the
// libraries (yauzl and co.) are built around streaming entries out, not handing back file offsets.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../errors/checkpoint-error.js';
import { readAt } from './read-bytes.js';

export interface ZipEntry {
  name: string;
  /** Absolute offset of the entry's first data byte. */
  dataOffset: number;
  size: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_EOCD_SEARCH = 22 + 0xffff;

export const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

const u64 = (view: DataView, offset: number): number => {
  const value = view.getBigUint64(offset, true);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.POSITIVE_INFINITY : Number(value);
};

interface Directory {
  offset: number;
  size: number;
  count: number;
}

async function findDirectory(handle: FileHandle, file: string, fileSize: number): Promise<Directory> {
  const tailLength = Math.min(fileSize, MAX_EOCD_SEARCH);
  const tailStart = fileSize - tailLength;
  const tail = await readAt(handle, tailStart, tailLength, { file });
  const view = new DataView(tail.buffer);
  let at = -1;
  for (let index = tailLength - 22; index >= 0; index -= 1) {
    if (view.getUint32(index, true) === EOCD && index + 22 + view.getUint16(index + 20, true) <= tailLength) {
      at = index;
      break;
    }
  }
  if (at < 0) throw new CheckpointError('truncated', `${file} is truncated: the zip has no end-of-central-directory record.`, { file });
  const directory = { offset: view.getUint32(at + 16, true), size: view.getUint32(at + 12, true), count: view.getUint16(at + 10, true) };
  if (at >= 20 && view.getUint32(at - 20, true) === ZIP64_LOCATOR) {
    const recordOffset = u64(view, at - 20 + 8);
    if (recordOffset + 56 > fileSize) throw new CheckpointError('bad_header', `${file}: the zip64 end record lies outside the file.`, { file });
    const record = new DataView((await readAt(handle, recordOffset, 56, { file })).buffer);
    if (record.getUint32(0, true) !== ZIP64_EOCD) throw new CheckpointError('bad_header', `${file}: the zip64 end record is missing.`, { file });
    directory.count = u64(record, 32);
    directory.size = u64(record, 40);
    directory.offset = u64(record, 48);
  }
  if (directory.offset + directory.size > fileSize) {
    throw new CheckpointError('truncated', `${file} is truncated: its zip central directory runs past the end of the file.`, { file });
  }
  return directory;
}

/** Sizes and offset from a zip64 extra field, for those the fixed fields mark 0xFFFFFFFF. */
function applyZip64(extra: DataView, fields: { size: number; compressedSize: number; localOffset: number }): void {
  for (let at = 0; at + 4 <= extra.byteLength; ) {
    const id = extra.getUint16(at, true);
    const length = extra.getUint16(at + 2, true);
    if (id === 0x0001) {
      let cursor = at + 4;
      const next = (): number => {
        if (cursor + 8 > at + 4 + length || cursor + 8 > extra.byteLength) return Number.POSITIVE_INFINITY;
        const value = u64(extra, cursor);
        cursor += 8;
        return value;
      };
      if (fields.size === 0xffffffff) fields.size = next();
      if (fields.compressedSize === 0xffffffff) fields.compressedSize = next();
      if (fields.localOffset === 0xffffffff) fields.localOffset = next();
      return;
    }
    at += 4 + length;
  }
}

/** Every entry of the zip with its data offset, checked to lie inside the file. */
export async function readZipDirectory(handle: FileHandle, file: string): Promise<Map<string, ZipEntry>> {
  const { size: fileSize } = await handle.stat();
  const directory = await findDirectory(handle, file, fileSize);
  const bytes = await readAt(handle, directory.offset, directory.size, { file });
  const view = new DataView(bytes.buffer);
  const decoder = new TextDecoder();
  const entries = new Map<string, ZipEntry>();
  const bad = (message: string) => new CheckpointError('bad_header', `${file}: ${message}.`, { file });
  let at = 0;
  for (let index = 0; index < directory.count; index += 1) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== CENTRAL) throw bad('the zip central directory is damaged');
    const flags = view.getUint16(at + 8, true);
    const method = view.getUint16(at + 10, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    if (at + 46 + nameLength + extraLength > bytes.length) throw bad('the zip central directory is damaged');
    const name = decoder.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    const fields = { size: view.getUint32(at + 24, true), compressedSize: view.getUint32(at + 20, true), localOffset: view.getUint32(at + 42, true) };
    applyZip64(new DataView(bytes.buffer, at + 46 + nameLength, extraLength), fields);
    at += 46 + nameLength + extraLength + commentLength;
    if (method !== 0 || (flags & 1) !== 0) throw bad(`zip entry ${name} is compressed or encrypted; PyTorch checkpoints store entries as they are`);
    if (fields.size !== fields.compressedSize) throw bad(`zip entry ${name} has different stored and real sizes`);
    entries.set(name, { name, dataOffset: fields.localOffset, size: fields.size });
  }
  for (const entry of entries.values()) {
    if (entry.dataOffset + 30 > fileSize) throw new CheckpointError('truncated', `${file} is truncated: zip entry ${entry.name} starts past its end.`, { file });
    const local = new DataView((await readAt(handle, entry.dataOffset, 30, { file })).buffer);
    if (local.getUint32(0, true) !== LOCAL) throw bad(`zip entry ${entry.name} has no local header where the directory says`);
    entry.dataOffset += 30 + local.getUint16(26, true) + local.getUint16(28, true);
    if (entry.dataOffset + entry.size > fileSize) {
      throw new CheckpointError('truncated', `${file} is truncated: zip entry ${entry.name} runs past the end of the file.`, { file });
    }
  }
  return entries;
}
