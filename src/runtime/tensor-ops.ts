import type { TensorData } from './onnx-session.js';

/** Rows of a [rows, ...] float tensor picked (and repeated) by `rows`: beam reordering and beam expansion. */
export function gatherRows(tensor: TensorData, rows: readonly number[]): TensorData {
  const source = tensor.data as Float32Array;
  const rowSize = tensor.dims[0] === 0 ? 0 : source.length / tensor.dims[0]!;
  const data = new Float32Array(rows.length * rowSize);
  rows.forEach((row, index) => data.set(source.subarray(row * rowSize, (row + 1) * rowSize), index * rowSize));
  return { type: 'float32', data, dims: [rows.length, ...tensor.dims.slice(1)] };
}

/** The last position's logits of each row of a [rows, sequence, vocabulary] tensor. */
export function lastPositionRows(logits: TensorData): Float32Array[] {
  const [rows, sequence, vocabulary] = logits.dims as [number, number, number];
  const data = logits.data as Float32Array;
  return Array.from({ length: rows }, (_, row) => {
    const start = (row * sequence + sequence - 1) * vocabulary;
    return data.slice(start, start + vocabulary);
  });
}

/** Softmax over a vector, in float64 for the sums. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let index = 0; index < logits.length; index += 1) max = Math.max(max, logits[index]!);
  const result = new Float64Array(logits.length);
  let sum = 0;
  for (let index = 0; index < logits.length; index += 1) {
    result[index] = Math.exp(logits[index]! - max);
    sum += result[index]!;
  }
  for (let index = 0; index < logits.length; index += 1) result[index]! /= sum;
  return result;
}

/** Indices of the k largest values, largest first (ties: lower index first). */
export function topKIndices(values: ArrayLike<number>, k: number): number[] {
  const indices = Array.from({ length: values.length }, (_, index) => index);
  indices.sort((left, right) => values[right]! - values[left]! || left - right);
  return indices.slice(0, Math.min(k, values.length));
}
