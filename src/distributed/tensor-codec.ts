import { crc32 } from 'node:zlib';
import type { TensorData } from '../runtime/onnx-session.js';

/** How image embeddings are stored in Redis: float32 as computed, or float16 at half the bytes (see docs/scaling.md). */
export type StoredPrecision = 'float32' | 'float16';

// "VQAT": a value that does not start with it was not written by this codec (another tool, a key clash).
const MAGIC = 0x54415156;
const VERSION = 1;
const DTYPE_CODES: Record<StoredPrecision, number> = { float32: 1, float16: 2 };
const HEADER_BYTES = 8;

/**
 * A float32 tensor as compact bytes: an 8-byte header (magic, version, dtype, rank), the dims as uint32, a CRC-32
 * of the payload, then the payload, little-endian. The CRC makes a torn or overwritten value a miss, not wrong
 * embeddings fed to a model.
 *
 * @example
 * const bytes = encodeTensor({ type: 'float32', data: new Float32Array([1, 2]), dims: [1, 2] }, { precision: 'float16' });
 * decodeTensor(bytes); // { type: 'float32', data: Float32Array [1, 2], dims: [1, 2] }
 */
export function encodeTensor(tensor: TensorData, options: { precision?: StoredPrecision } = {}): Buffer {
  if (tensor.type !== 'float32' || !(tensor.data instanceof Float32Array)) throw new TypeError('Only float32 tensors are stored in the shared cache.');
  const precision = options.precision ?? 'float32';
  const payload = precision === 'float32' ? float32Bytes(tensor.data) : float16Bytes(tensor.data);
  const buffer = Buffer.allocUnsafe(HEADER_BYTES + 4 * tensor.dims.length + 4 + payload.byteLength);
  buffer.writeUInt32LE(MAGIC, 0);
  buffer.writeUInt8(VERSION, 4);
  buffer.writeUInt8(DTYPE_CODES[precision], 5);
  buffer.writeUInt8(tensor.dims.length, 6);
  buffer.writeUInt8(0, 7);
  tensor.dims.forEach((dim, index) => buffer.writeUInt32LE(dim, HEADER_BYTES + 4 * index));
  const crcAt = HEADER_BYTES + 4 * tensor.dims.length;
  buffer.writeUInt32LE(crc32(payload), crcAt);
  buffer.set(payload, crcAt + 4);
  return buffer;
}

/** The tensor, or undefined when the bytes are not a whole, intact value of this codec. */
export function decodeTensor(bytes: Buffer): TensorData | undefined {
  if (bytes.byteLength < HEADER_BYTES + 4 || bytes.readUInt32LE(0) !== MAGIC || bytes.readUInt8(4) !== VERSION) return undefined;
  const dtype = bytes.readUInt8(5);
  const rank = bytes.readUInt8(6);
  const crcAt = HEADER_BYTES + 4 * rank;
  if (bytes.byteLength < crcAt + 4) return undefined;
  const dims: number[] = [];
  for (let index = 0; index < rank; index += 1) dims.push(bytes.readUInt32LE(HEADER_BYTES + 4 * index));
  const count = dims.reduce((product, dim) => product * dim, 1);
  const elementBytes = dtype === DTYPE_CODES.float32 ? 4 : dtype === DTYPE_CODES.float16 ? 2 : 0;
  if (elementBytes === 0 || bytes.byteLength !== crcAt + 4 + count * elementBytes) return undefined;
  const payload = bytes.subarray(crcAt + 4);
  if (crc32(payload) !== bytes.readUInt32LE(crcAt)) return undefined;
  const data = new Float32Array(count);
  if (elementBytes === 4) new Uint8Array(data.buffer).set(payload);
  else for (let index = 0; index < count; index += 1) data[index] = fromHalf(payload.readUInt16LE(2 * index));
  return { type: 'float32', data, dims };
}

function float32Bytes(data: Float32Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function float16Bytes(data: Float32Array): Buffer {
  const out = Buffer.allocUnsafe(2 * data.length);
  for (let index = 0; index < data.length; index += 1) out.writeUInt16LE(toHalf(data[index]!), 2 * index);
  return out;
}

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** IEEE 754 binary16, rounded to nearest even; overflow goes to infinity, tiny values to subnormals or zero. */
function toHalf(value: number): number {
  scratch[0] = value;
  const bits = scratchBits[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa ? 0x200 : 0);
  let half = exponent - 127 + 15;
  if (half >= 0x1f) return sign | 0x7c00;
  if (half <= 0) {
    if (half < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - half;
    const rounded = (mantissa >>> shift) + (((mantissa >>> (shift - 1)) & 1) && ((mantissa & ((1 << (shift - 1)) - 1)) || ((mantissa >>> shift) & 1)) ? 1 : 0);
    return sign | rounded;
  }
  const low = mantissa & 0x1fff;
  mantissa >>>= 13;
  if (low > 0x1000 || (low === 0x1000 && (mantissa & 1))) {
    mantissa += 1;
    if (mantissa === 0x400) {
      mantissa = 0;
      half += 1;
      if (half >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (half << 10) | mantissa;
}

function fromHalf(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >>> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}
