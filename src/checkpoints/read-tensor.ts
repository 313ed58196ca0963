// Reads one tensor's bytes from its file and turns them into a row-major output array. Memory: the output, plus the
// source bytes when they must be converted (half, bfloat16, double, narrow ints, strided views).
import type { FileHandle } from 'node:fs/promises';
import { allocateOutput, convertElements, elementCount, hostLittleEndian, itemSize, swapBytes } from './dtypes.js';
import { readAt, readFully } from './read-bytes.js';
import type { TensorData, TensorLocation } from './types.js';

/** Source types whose bytes are the output's bytes on a little-endian host. */
const SAME_BYTES = new Set(['float32', 'int64', 'int32', 'uint8', 'bool']);

/** Number of storage elements a view spans, from its first element to its last (0 when it has no element). */
export function viewSpan(shape: readonly number[], strides: readonly number[] | undefined): number {
  if (shape.some((size) => size === 0)) return 0;
  if (!strides) return elementCount(shape);
  return shape.reduce((last, size, axis) => last + (size - 1) * strides[axis]!, 0) + 1;
}

/** True when the strides are those of a row-major tensor of this shape (size-1 axes may have any stride). */
export function isContiguous(shape: readonly number[], strides: readonly number[]): boolean {
  let expected = 1;
  for (let axis = shape.length - 1; axis >= 0; axis -= 1) {
    if (shape[axis] !== 1 && strides[axis] !== expected) return false;
    expected *= shape[axis]!;
  }
  return true;
}

/** Source element index of each output element in row-major order; called once per index, in increasing order. */
function stridedWalker(shape: readonly number[], strides: readonly number[]): (index: number) => number {
  const counter = new Array<number>(shape.length).fill(0);
  let offset = 0;
  let first = true;
  return () => {
    if (first) {
      first = false;
      return offset;
    }
    for (let axis = shape.length - 1; axis >= 0; axis -= 1) {
      counter[axis]! += 1;
      offset += strides[axis]!;
      if (counter[axis]! < shape[axis]!) return offset;
      offset -= counter[axis]! * strides[axis]!;
      counter[axis] = 0;
    }
    return offset;
  };
}

/** Reads the tensor at `location` from `handle`. The location has been checked against the file's bounds. */
export async function readTensorData(handle: FileHandle, location: TensorLocation): Promise<TensorData> {
  const { sourceDtype, shape, strides, position, key, file } = location;
  const count = elementCount(shape);
  const size = itemSize(sourceDtype);
  const output = allocateOutput(sourceDtype, count);
  if (count === 0) return output;
  const where = { file, key };
  if (!strides && hostLittleEndian && SAME_BYTES.has(sourceDtype)) {
    // The common case (float32 weights): read straight into the output, no second copy.
    const bytes = new Uint8Array(output.buffer, output.byteOffset, count * size);
    await readFully(handle, bytes, position, where);
    if (!location.littleEndian) swapBytes(bytes, size);
    if (sourceDtype === 'bool') for (let index = 0; index < count; index += 1) bytes[index] = bytes[index] ? 1 : 0;
    return output;
  }
  const bytes = await readAt(handle, position, viewSpan(shape, strides) * size, where);
  if (!location.littleEndian) swapBytes(bytes, size);
  convertElements(sourceDtype, bytes, output, count, strides ? stridedWalker(shape, strides) : undefined);
  return output;
}
