// Positional reads that either fill the whole target or say the file ended.
import type { FileHandle } from 'node:fs/promises';
import { CheckpointError } from '../errors/checkpoint-error.js';

// fs reads take at most 2 GiB - 1 bytes per call; large tensors are read in chunks.
const CHUNK = 1 << 30;

/** Fills `target` from `position` in the file, or throws a `truncated` CheckpointError naming `file` (and `key`). */
export async function readFully(handle: FileHandle, target: Uint8Array, position: number, where: { file: string; key?: string }): Promise<void> {
  let done = 0;
  while (done < target.length) {
    const length = Math.min(CHUNK, target.length - done);
    const { bytesRead } = await handle.read(target, done, length, position + done);
    if (bytesRead === 0) {
      const what = where.key === undefined ? '' : ` (tensor ${JSON.stringify(where.key)})`;
      throw new CheckpointError('truncated', `${where.file} ends at byte ${position + done}, before the ${target.length} bytes at ${position}${what}.`, where);
    }
    done += bytesRead;
  }
}

/** Reads `length` bytes at `position` into a new buffer. */
export async function readAt(handle: FileHandle, position: number, length: number, where: { file: string; key?: string }): Promise<Uint8Array> {
  const target = new Uint8Array(length);
  await readFully(handle, target, position, where);
  return target;
}
