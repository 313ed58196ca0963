// Types of the checkpoint readers. The readers know file formats, not models: a checkpoint is a set of named tensors.

/** Element types the readers understand, named as torch names them. */
export type SourceDtype = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/**
 * What `read` returns for each source type: every floating type becomes float32, int64 stays int64 (BigInt64Array),
 * the narrower signed integers widen to int32, uint8 and bool stay bytes (bool as 0/1).
 */
export type TensorDtype = 'float32' | 'int64' | 'int32' | 'uint8' | 'bool';

export type TensorData = Float32Array | BigInt64Array | Int32Array | Uint8Array;

export type CheckpointFormat = 'safetensors' | 'pytorch';

/** Where a tensor is and what it holds, known without reading its bytes. */
export interface TensorInfo {
  key: string;
  /** The type stored in the file. */
  sourceDtype: SourceDtype;
  /** The type `read` returns. */
  dtype: TensorDtype;
  /** `[]` for a 0-d scalar. */
  shape: readonly number[];
  /** The file holding the tensor's bytes. */
  file: string;
}

/** One tensor, read. `data` is row-major (C order), whatever the strides in the file. */
export interface CheckpointTensor extends TensorInfo {
  data: TensorData;
}

export interface ReadTensorOptions {
  /** The shape the caller expects; any other is a `shape_mismatch` CheckpointError. */
  shape?: readonly number[];
}

export interface ExpectKeysOptions {
  /** Keys the checkpoint may hold beyond the expected ones: all of them (`true`), or those the function accepts. */
  allowUnexpected?: boolean | ((key: string) => boolean);
}

/** An open checkpoint: its index is in memory, its tensors are read one at a time from the files. */
export interface Checkpoint {
  /** The folder or file that was opened. */
  readonly path: string;
  readonly format: CheckpointFormat;
  /** Every file the checkpoint reads (one, or the shards). */
  readonly files: readonly string[];
  /** Tensor names, in file order. */
  readonly keys: readonly string[];
  has(key: string): boolean;
  /** Throws a `missing_key` CheckpointError for a key the checkpoint does not hold. */
  info(key: string): TensorInfo;
  /** Reads one tensor from disk; nothing is cached, so memory holds only what the caller keeps. */
  read(key: string, options?: ReadTensorOptions): Promise<CheckpointTensor>;
  /** Throws `missing_key` when an expected key is absent, `unexpected_key` when the checkpoint holds another. */
  expectKeys(expected: Iterable<string>, options?: ExpectKeysOptions): void;
  /** Closes the file handles; later reads throw a `closed` CheckpointError. */
  close(): Promise<void>;
}

/** Internal: how to find one tensor's bytes. */
export interface TensorLocation {
  key: string;
  file: string;
  sourceDtype: SourceDtype;
  shape: readonly number[];
  /** Absolute file offset of the element at index 0 of the storage region (storage start + storage offset). */
  position: number;
  /** Element strides; absent when the tensor is row-major contiguous. */
  strides?: readonly number[];
  littleEndian: boolean;
}
