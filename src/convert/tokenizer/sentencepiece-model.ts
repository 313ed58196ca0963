/**
 * SentencePiece's `ModelProto` (an `spm.model` file), decoded with the defaults of sentencepiece_model.proto
 * (proto2: an absent optional field reads as its declared default). Only the fields the tokenizer.json conversion
 * reads are kept; the others are skipped, as any protobuf reader skips fields it does not know.
 */
import { ConversionError } from '../../errors/conversion-error.js';
import { ProtobufReader, WireFormatProblem, WireType } from './protobuf-wire.js';

/** `ModelProto.SentencePiece.Type`. */
export const PieceType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface SentencePiece {
  piece: string;
  /** The float32 score, widened exactly to a double. */
  score: number;
  /** A `PieceType` value (NORMAL when absent). */
  type: number;
}

export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: {
    /** 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR. */
    modelType: number;
    unkId: number;
    unkPiece: string;
    byteFallback: boolean;
  };
  normalizerSpec: {
    name: string;
    /** Empty when the model has no charsmap (an `identity` normalizer). */
    precompiledCharsmap: Uint8Array;
    addDummyPrefix: boolean;
    removeExtraWhitespaces: boolean;
    escapeWhitespaces: boolean;
  };
}

// Field numbers from sentencepiece_model.proto.
const MODEL = { pieces: 1, trainerSpec: 2, normalizerSpec: 3 } as const;
const PIECE = { piece: 1, score: 2, type: 3 } as const;
const TRAINER = { modelType: 3, byteFallback: 35, unkId: 40, unkPiece: 45 } as const;
const NORMALIZER = { name: 1, precompiledCharsmap: 2, addDummyPrefix: 3, removeExtraWhitespaces: 4, escapeWhitespaces: 5 } as const;

// Protobuf `string` fields must be UTF-8; Python's protobuf refuses a model whose pieces are not.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes an spm.model. `file` only names the file in errors.
 *
 * A model SentencePiece wrote always holds pieces, a trainer_spec and a normalizer_spec; bytes that decode as
 * protobuf but lack any of them (a file cut at a field boundary, some other protobuf) are refused too, since
 * converting them would quietly produce a tokenizer with default settings.
 *
 * @throws ConversionError `bad_tokenizer` naming the file and the offset where decoding failed.
 * @example
 * const model = readSentencePieceModel(await readFile('spm.model'), { file: 'spm.model' });
 * model.pieces[1]; // { piece: '[CLS]', score: 0, type: 3 }
 */
export function readSentencePieceModel(bytes: Uint8Array, options: { file: string }): SentencePieceModel {
  const { file } = options;
  const model: SentencePieceModel = {
    pieces: [],
    trainerSpec: { modelType: 1, unkId: 0, unkPiece: '<unk>', byteFallback: false },
    normalizerSpec: {
      name: '',
      precompiledCharsmap: new Uint8Array(0),
      addDummyPrefix: true,
      removeExtraWhitespaces: true,
      escapeWhitespaces: true,
    },
  };
  let hasTrainerSpec = false;
  let hasNormalizerSpec = false;
  try {
    const reader = new ProtobufReader(bytes);
    while (!reader.done) {
      const { field, wireType } = reader.tag();
      if (field === MODEL.pieces && wireType === WireType.lengthDelimited) {
        model.pieces.push(readPiece(reader.message()));
      } else if (field === MODEL.trainerSpec && wireType === WireType.lengthDelimited) {
        // A repeated embedded message merges into the earlier one (protobuf semantics).
        readTrainerSpec(reader.message(), model.trainerSpec);
        hasTrainerSpec = true;
      } else if (field === MODEL.normalizerSpec && wireType === WireType.lengthDelimited) {
        readNormalizerSpec(reader.message(), model.normalizerSpec);
        hasNormalizerSpec = true;
      } else {
        reader.skip(wireType);
      }
    }
  } catch (error) {
    if (!(error instanceof WireFormatProblem)) throw error;
    throw notSentencePiece(file, `${error.message} (byte ${error.offset} of ${bytes.length})`, error);
  }
  const missing = [model.pieces.length === 0 && 'pieces', !hasTrainerSpec && 'trainer_spec', !hasNormalizerSpec && 'normalizer_spec'].filter(Boolean);
  if (missing.length > 0) throw notSentencePiece(file, `it has no ${missing.join(', ')} (${bytes.length} bytes)`);
  return model;
}

function notSentencePiece(file: string, why: string, cause?: unknown): ConversionError {
  return new ConversionError('bad_tokenizer', `${file} is not a complete SentencePiece model: ${why}.`, {
    file,
    cause,
    hint: 'Download the spm.model again; a truncated download or another file saved under that name gives this error.',
  });
}

function readPiece(reader: ProtobufReader): SentencePiece {
  const piece: SentencePiece = { piece: '', score: 0, type: PieceType.normal };
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === PIECE.piece && wireType === WireType.lengthDelimited) piece.piece = readString(reader);
    else if (field === PIECE.score && wireType === WireType.fixed32) piece.score = reader.float32();
    else if (field === PIECE.type && wireType === WireType.varint) piece.type = reader.int32();
    else reader.skip(wireType);
  }
  return piece;
}

function readTrainerSpec(reader: ProtobufReader, spec: SentencePieceModel['trainerSpec']): void {
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === TRAINER.modelType && wireType === WireType.varint) spec.modelType = reader.int32();
    else if (field === TRAINER.byteFallback && wireType === WireType.varint) spec.byteFallback = reader.bool();
    else if (field === TRAINER.unkId && wireType === WireType.varint) spec.unkId = reader.int32();
    else if (field === TRAINER.unkPiece && wireType === WireType.lengthDelimited) spec.unkPiece = readString(reader);
    else reader.skip(wireType);
  }
}

function readNormalizerSpec(reader: ProtobufReader, spec: SentencePieceModel['normalizerSpec']): void {
  while (!reader.done) {
    const { field, wireType } = reader.tag();
    if (field === NORMALIZER.name && wireType === WireType.lengthDelimited) spec.name = readString(reader);
    else if (field === NORMALIZER.precompiledCharsmap && wireType === WireType.lengthDelimited) spec.precompiledCharsmap = reader.lengthDelimited();
    else if (field === NORMALIZER.addDummyPrefix && wireType === WireType.varint) spec.addDummyPrefix = reader.bool();
    else if (field === NORMALIZER.removeExtraWhitespaces && wireType === WireType.varint) spec.removeExtraWhitespaces = reader.bool();
    else if (field === NORMALIZER.escapeWhitespaces && wireType === WireType.varint) spec.escapeWhitespaces = reader.bool();
    else reader.skip(wireType);
  }
}

function readString(reader: ProtobufReader): string {
  const at = reader.offset;
  const bytes = reader.lengthDelimited();
  try {
    return utf8.decode(bytes);
  } catch {
    throw new WireFormatProblem(at, 'a string field is not valid UTF-8');
  }
}
