// Writes one graph's data file: each planned tensor read from the checkpoint (float32 whatever the stored type),
// at its offset, one tensor in memory at a time. The file is hashed as it is written, so the manifest's sha256 costs
// no second read of gigabytes.
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { endianness } from 'node:os';
import type { Checkpoint, TensorData } from '../checkpoints/index.js';
import type { GraphPlan, PlannedTensor } from './weight-plan.js';

export interface WriteGraphDataOptions {
  checkpoint: Checkpoint;
  plan: GraphPlan;
  /** The data file to create. */
  file: string;
  /** Called after each tensor with its byte length. */
  onBytes?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface WrittenFile {
  sha256: string;
  bytes: number;
}

/** Row-major [rows, columns] -> [columns, rows]. */
function transpose2d<T extends Float32Array | BigInt64Array>(data: T, rows: number, columns: number): T {
  const result = new (data.constructor as new (length: number) => T)(data.length);
  for (let row = 0; row < rows; row += 1) {
    for (let column = 0; column < columns; column += 1) result[column * rows + row] = data[row * columns + column]!;
  }
  return result;
}

/** The tensor's values as the graph stores them: float32, or int64 for integer initializers. */
function toGraphType(item: PlannedTensor, data: TensorData): Float32Array | BigInt64Array {
  if (item.tensor.dtype === 'float32') return data as Float32Array; // the reader turns every floating type into float32
  if (data instanceof BigInt64Array) return data;
  return BigInt64Array.from(data as ArrayLike<number>, (value) => BigInt(value));
}

/**
 * @example
 * const { sha256 } = await writeGraphData({ checkpoint, plan, file: 'out/onnx/vision_encoder.onnx.data' });
 */
export async function writeGraphData({ checkpoint, plan, file, onBytes, signal }: WriteGraphDataOptions): Promise<WrittenFile> {
  // ONNX external data is little-endian, and typed arrays are in the machine's order.
  if (endianness() !== 'LE') throw new Error('Converting checkpoints needs a little-endian machine.');
  const hash = createHash('sha256');
  const handle = await open(file, 'wx');
  let position = 0;
  const put = async (bytes: Uint8Array) => {
    let written = 0;
    while (written < bytes.length) {
      const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, position + written);
      written += bytesWritten;
    }
    hash.update(bytes);
    position += bytes.length;
  };
  try {
    for (const item of plan.tensors) {
      signal?.throwIfAborted();
      if (item.offset > position) await put(new Uint8Array(item.offset - position));
      let values = toGraphType(item, (await checkpoint.read(item.key)).data);
      if (values.byteLength !== item.length) throw new Error(`${item.key} read as ${values.byteLength} bytes where ${item.length} were planned.`);
      if (item.tensor.transform === 'transpose') values = transpose2d(values, item.sourceShape[0]!, item.sourceShape[1]!);
      await put(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      onBytes?.(item.length);
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), bytes: position };
}
