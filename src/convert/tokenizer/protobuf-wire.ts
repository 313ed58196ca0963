/**
 * The protobuf wire format, read field by field: just enough to decode SentencePiece's `ModelProto` without a schema
 * compiler. Every read is bounds-checked, so a truncated or foreign file fails with the offset where it stops making
 * sense instead of yielding garbage or a RangeError from a typed array.
 */

/** Wire types of the protobuf encoding (groups, 3 and 4, are deprecated and never used by SentencePiece). */
export const WireType = { varint: 0, fixed64: 1, lengthDelimited: 2, fixed32: 5 } as const;

/** Why the bytes are not a well-formed protobuf message: where it broke and how. */
export class WireFormatProblem extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
    this.name = 'WireFormatProblem';
  }
}

/** One field of a message: its number and wire type; the value is read by the matching `read*` call or skipped. */
export interface FieldTag {
  field: number;
  wireType: number;
}

export class ProtobufReader {
  private position: number;

  /** Reads `bytes[start, end)`; offsets in problems are absolute within `bytes`. */
  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    private readonly end = bytes.length,
  ) {
    this.position = start;
  }

  get offset(): number {
    return this.position;
  }

  get done(): boolean {
    return this.position >= this.end;
  }

  /** The next field's tag. */
  tag(): FieldTag {
    const at = this.position;
    const key = this.varint();
    const field = Math.floor(key / 8);
    const wireType = key % 8;
    if (field === 0 || field > 0x1fffffff) throw new WireFormatProblem(at, `field number ${field} is not a valid protobuf field number`);
    if (wireType !== 0 && wireType !== 1 && wireType !== 2 && wireType !== 5) {
      throw new WireFormatProblem(at, `wire type ${wireType} (field ${field}) is not one a SentencePiece model uses`);
    }
    return { field, wireType };
  }

  /**
   * An unsigned varint (up to 64 bits, as protobuf allows), as a number: exact up to 2^53, which covers every tag,
   * length and enum; `int32()` takes its low 32 bits exactly whatever its size.
   */
  varint(): number {
    const at = this.position;
    let value = 0;
    let low = 0;
    for (let shift = 0; shift < 70; shift += 7) {
      if (this.position >= this.end) throw new WireFormatProblem(at, 'a varint runs past the end of the data');
      const byte = this.bytes[this.position++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if (shift < 32) low = (low | ((byte & 0x7f) << shift)) >>> 0;
      if ((byte & 0x80) === 0) {
        this.lastLow32 = low;
        return value;
      }
    }
    throw new WireFormatProblem(at, 'a varint is longer than 10 bytes');
  }

  private lastLow32 = 0;

  /** An `int32` / enum value: the low 32 bits of the varint, signed (negative values take 10 bytes on the wire). */
  int32(): number {
    this.varint();
    return this.lastLow32 | 0;
  }

  bool(): boolean {
    return this.varint() !== 0;
  }

  /** A `float` (wire type 5), widened to a double exactly. */
  float32(): number {
    const at = this.take(4, 'a float');
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + at, 4).getFloat32(0, true);
  }

  /** The bytes of a length-delimited field (a view, not a copy). */
  lengthDelimited(): Uint8Array {
    const length = this.varint();
    if (length > this.end - this.position) {
      throw new WireFormatProblem(this.position, `a field of ${length} bytes runs past the end of the data (${this.end - this.position} left)`);
    }
    const at = this.take(length, 'a length-delimited field');
    return this.bytes.subarray(at, at + length);
  }

  /** A reader over an embedded message, with offsets still counted from the start of the whole data. */
  message(): ProtobufReader {
    const length = this.varint();
    if (length > this.end - this.position) {
      throw new WireFormatProblem(this.position, `a message of ${length} bytes runs past the end of the data (${this.end - this.position} left)`);
    }
    const start = this.take(length, 'a message');
    return new ProtobufReader(this.bytes, start, start + length);
  }

  /** Skips a field this reader does not need. */
  skip(wireType: number): void {
    if (wireType === WireType.varint) this.varint();
    else if (wireType === WireType.fixed64) this.take(8, 'a fixed64');
    else if (wireType === WireType.fixed32) this.take(4, 'a fixed32');
    else this.lengthDelimited();
  }

  private take(length: number, what: string): number {
    if (this.position + length > this.end) throw new WireFormatProblem(this.position, `${what} runs past the end of the data`);
    const at = this.position;
    this.position += length;
    return at;
  }
}
