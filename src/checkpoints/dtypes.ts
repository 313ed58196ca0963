// Element types: sizes, the type each becomes on read, and the conversions (half and bfloat16 by bit patterns).
import type { SourceDtype, TensorData, TensorDtype } from './types.js';

interface DtypeSpec {
  itemSize: number;
  output: TensorDtype;
}

const SPECS: Record<SourceDtype, DtypeSpec> = {
  float32: { itemSize: 4, output: 'float32' },
  float16: { itemSize: 2, output: 'float32' },
  bfloat16: { itemSize: 2, output: 'float32' },
  float64: { itemSize: 8, output: 'float32' },
  int64: { itemSize: 8, output: 'int64' },
  int32: { itemSize: 4, output: 'int32' },
  int16: { itemSize: 2, output: 'int32' },
  int8: { itemSize: 1, output: 'int32' },
  uint8: { itemSize: 1, output: 'uint8' },
  bool: { itemSize: 1, output: 'bool' },
};

export const itemSize = (dtype: SourceDtype): number => SPECS[dtype].itemSize;
export const outputDtype = (dtype: SourceDtype): TensorDtype => SPECS[dtype].output;

/** Element count of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  return shape.reduce((count, size) => count * size, 1);
}

/** The output array for `count` elements of `dtype`. */
export function allocateOutput(dtype: SourceDtype, count: number): TensorData {
  switch (SPECS[dtype].output) {
    case 'float32':
      return new Float32Array(count);
    case 'int64':
      return new BigInt64Array(count);
    case 'int32':
      return new Int32Array(count);
    default:
      return new Uint8Array(count);
  }
}

let halfTable: Float32Array | undefined;

/** All 65,536 half-precision values as float32: exact, and faster than decoding bits per element. */
function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits += 1) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exponent = (bits >> 10) & 0x1f;
    const fraction = bits & 0x3ff;
    if (exponent === 0) halfTable[bits] = sign * fraction * 2 ** -24;
    else if (exponent === 31) halfTable[bits] = fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else halfTable[bits] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
  }
  return halfTable;
}

export const hostLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Whole-array conversions through typed-array views, for row-major sources on a little-endian host. */
function convertContiguous(dtype: SourceDtype, bytes: Uint8Array, output: TensorData, count: number): boolean {
  const size = itemSize(dtype);
  if (bytes.byteOffset % size !== 0) return false;
  const source = (Type: { new (buffer: ArrayBufferLike, offset: number, length: number): ArrayLike<number> }) => new Type(bytes.buffer, bytes.byteOffset, count);
  switch (dtype) {
    case 'float16': {
      const table = halfToFloat();
      const halves = source(Uint16Array) as Uint16Array;
      const target = output as Float32Array;
      for (let index = 0; index < count; index += 1) target[index] = table[halves[index]!]!;
      return true;
    }
    case 'bfloat16': {
      const halves = source(Uint16Array) as Uint16Array;
      const target = new Uint32Array(output.buffer, output.byteOffset, count);
      for (let index = 0; index < count; index += 1) target[index] = halves[index]! << 16;
      return true;
    }
    case 'float64':
      (output as Float32Array).set(source(Float64Array));
      return true;
    case 'int16':
      (output as Int32Array).set(source(Int16Array));
      return true;
    case 'int8':
      (output as Int32Array).set(source(Int8Array));
      return true;
    default:
      return false;
  }
}

/**
 * Converts `count` little-endian elements of `dtype` from `bytes` into `output`, element `index` of the source going
 * to `index` of the output (`gather` maps output index -> source element index when the tensor is strided).
 */
export function convertElements(dtype: SourceDtype, bytes: Uint8Array, output: TensorData, count: number, gather?: (index: number) => number): void {
  if (!gather && hostLittleEndian && convertContiguous(dtype, bytes, output, count)) return;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = gather ?? ((index: number) => index);
  switch (dtype) {
    case 'float32': {
      const target = output as Float32Array;
      for (let index = 0; index < count; index += 1) target[index] = view.getFloat32(at(index) * 4, true);
      return;
    }
    case 'float16': {
      const table = halfToFloat();
      const target = output as Float32Array;
      for (let index = 0; index < count; index += 1) target[index] = table[view.getUint16(at(index) * 2, true)]!;
      return;
    }
    case 'bfloat16': {
      // bfloat16 is the top half of a float32: shift the bits up and reinterpret.
      const target = new Uint32Array((output as Float32Array).buffer, output.byteOffset, count);
      for (let index = 0; index < count; index += 1) target[index] = view.getUint16(at(index) * 2, true) << 16;
      return;
    }
    case 'float64': {
      const target = output as Float32Array;
      for (let index = 0; index < count; index += 1) target[index] = view.getFloat64(at(index) * 8, true);
      return;
    }
    case 'int64': {
      const target = output as BigInt64Array;
      for (let index = 0; index < count; index += 1) target[index] = view.getBigInt64(at(index) * 8, true);
      return;
    }
    case 'int32':
    case 'int16':
    case 'int8': {
      const target = output as Int32Array;
      const read = dtype === 'int32' ? (offset: number) => view.getInt32(offset * 4, true)
        : dtype === 'int16' ? (offset: number) => view.getInt16(offset * 2, true) : (offset: number) => view.getInt8(offset);
      for (let index = 0; index < count; index += 1) target[index] = read(at(index));
      return;
    }
    case 'uint8': {
      const target = output as Uint8Array;
      for (let index = 0; index < count; index += 1) target[index] = bytes[at(index)]!;
      return;
    }
    case 'bool': {
      const target = output as Uint8Array;
      for (let index = 0; index < count; index += 1) target[index] = bytes[at(index)] ? 1 : 0;
      return;
    }
  }
}

/** Reverses each `size`-byte element in place (big-endian storages). */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let start = 0; start + size <= bytes.length; start += size) bytes.subarray(start, start + size).reverse();
}
