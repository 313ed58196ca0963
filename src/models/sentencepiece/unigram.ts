/**
 * SentencePiece's unigram segmentation (`unigram::Model::EncodeOptimized`) plus its byte fallback, over the pieces and
 * scores of a tokenizer.json `Unigram` model.
 *
 * Where it differs from transformers.js's `Unigram` model, which the runtime would otherwise use:
 *  - Only pieces SentencePiece puts in its trie can match the text: not the unknown piece, not the `<0xXX>` byte
 *    pieces of a byte-fallback model, not control symbols (`[CLS]`, `[SEP]`, `[PAD]`: in a converted tokenizer.json
 *    they are the pieces that are also special added tokens). transformers.js matches all of them, so the literal
 *    text `<0x41>` became the byte piece for `A`.
 *  - The best path is found as SentencePiece finds it: one pass over the start positions, the best path ending at each
 *    position kept with its score summed in float32, a later candidate replacing it only when strictly better — so of
 *    equal-scoring segmentations the one whose last piece starts earliest wins. transformers.js sums in float64 and
 *    breaks ties differently, which shows on long runs of one character.
 *  - The unknown score is the lowest score of a matchable piece minus 10 (SentencePiece: of the normal pieces).
 *  - Byte fallback: with `byte_fallback`, an unknown character becomes the `<0xXX>` pieces of its UTF-8 bytes.
 *    Without it, each unknown character is returned as the unknown piece (transformers.js then fuses a run of them
 *    into one unknown id, as SentencePiece does).
 *
 * Not modelled: user-defined pieces' score bonus and unused pieces (the tokenizer.json does not record piece types;
 * DeBERTa-v3's spm.model has neither).
 */

/** The `model` object of a tokenizer.json of type `Unigram`, as far as it is read here. */
export interface UnigramModelJson {
  vocab: ReadonlyArray<readonly [string, number]>;
  unk_id: number;
  byte_fallback?: boolean;
}

export interface SentencePieceUnigramOptions {
  /**
   * Ids of pieces that never match the text: SentencePiece's control symbols. In a tokenizer.json converted from an
   * spm.model, the pieces that are also special added tokens ([PAD], [CLS], [SEP]).
   */
  controlIds?: Iterable<number>;
}

const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
const encoder = new TextEncoder();

/** SentencePiece's penalty on the unknown piece, below the lowest piece score. */
const UNKNOWN_PENALTY = 10;

/**
 * @example
 * const unigram = new SentencePieceUnigram(tokenizerJson.model, { controlIds: [0, 1, 2] });
 * unigram.encode('▁café'); // ['▁caf', '<0xC3>', '<0xA9>'] when 'é' is not a piece
 */
export class SentencePieceUnigram {
  /**
   * The matchable pieces sorted by UTF-16 code units, with their ids: the pieces that start with a given text form one
   * run of this list, so the prefix search narrows a range by binary search, one code unit at a time.
   */
  private readonly sorted: string[];
  private readonly sortedIds: Int32Array;
  /** The range of `sorted` per first code unit. */
  private readonly firstUnitRanges = new Map<number, readonly [number, number]>();
  /** Float32 score per vocabulary id. */
  private readonly scores: Float32Array;
  private readonly vocabulary: string[];
  private readonly unknownScore: number;
  private readonly byteFallback: boolean;
  /** The `<0xXX>` piece of each byte, when the model has all 256. */
  private readonly bytePieces: string[] | undefined;
  private readonly unknownPiece: string;

  constructor(model: UnigramModelJson, options: SentencePieceUnigramOptions = {}) {
    const control = new Set(options.controlIds ?? []);
    this.byteFallback = model.byte_fallback === true;
    this.vocabulary = model.vocab.map(([piece]) => piece);
    this.scores = Float32Array.from(model.vocab, ([, score]) => score);
    const vocabulary = this.vocabulary;
    // The first id of each matchable piece (SentencePiece refuses duplicates; of any, the first is kept), then the
    // pieces in UTF-16 order: a plain sort() of strings, several times faster than a comparator over 128k pieces.
    const firstIds = new Map<string, number>();
    vocabulary.forEach((piece, id) => {
      if (piece.length === 0 || id === model.unk_id || control.has(id) || (this.byteFallback && BYTE_PIECE.test(piece))) return;
      if (!firstIds.has(piece)) firstIds.set(piece, id);
    });
    this.sorted = [...firstIds.keys()].sort();
    const ids = new Int32Array(this.sorted.length);
    let lowest = Infinity;
    this.sorted.forEach((piece, index) => {
      const id = firstIds.get(piece)!;
      ids[index] = id;
      lowest = Math.min(lowest, this.scores[id]!);
    });
    this.sortedIds = ids;
    for (let index = 0; index < this.sorted.length; ) {
      const unit = this.sorted[index]!.charCodeAt(0);
      const end = this.lowerBound(index, this.sorted.length, 0, unit + 1);
      this.firstUnitRanges.set(unit, [index, end]);
      index = end;
    }
    this.unknownScore = Math.fround((lowest === Infinity ? 0 : lowest) - UNKNOWN_PENALTY);
    this.unknownPiece = vocabulary[model.unk_id] ?? '';
    if (this.byteFallback) {
      // Byte pieces are not matchable, so they are looked up among all pieces (256 scans of a short prefix set).
      const bytes = Array.from({ length: 256 }, (_, byte) => `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
      const pieces = new Set(vocabulary.filter((piece) => piece.startsWith('<0x')));
      this.bytePieces = bytes.every((piece) => pieces.has(piece)) ? bytes : undefined;
    }
  }

  /**
   * The pieces of one pre-tokenized chunk (already normalized, spaces as `▁`). An unknown character comes back as its
   * byte pieces (byte fallback) or as the unknown piece.
   *
   * Positions here are UTF-16 indices at character boundaries; SentencePiece's are UTF-8 offsets at character
   * boundaries. Both order the start positions alike, so the path found is the same.
   */
  encode(text: string): string[] {
    const length = text.length;
    if (length === 0) return [];
    // Best path ending at each position: its float32 score, where its last piece starts (-1: not reached yet), and
    // that piece's id (-1: the unknown character there).
    const score = new Float32Array(length + 1);
    const start = new Int32Array(length + 1).fill(-1);
    const ids = new Int32Array(length + 1);
    const consider = (from: number, to: number, id: number, total: number): void => {
      if (start[to] === -1 || total > score[to]!) {
        score[to] = total;
        start[to] = from;
        ids[to] = id;
      }
    };

    for (let from = 0; from < length; from = nextCharacter(text, from)) {
      const base = score[from]!;
      const characterEnd = nextCharacter(text, from);
      let single = false;
      // Pieces in sorted[low, high) all start with text[from, from + depth).
      const range = this.firstUnitRanges.get(text.charCodeAt(from));
      let [low, high] = range ?? [0, 0];
      for (let depth = 1; low < high; depth++) {
        const end = from + depth;
        // The one piece that is exactly text[from, end), if any, sorts first.
        if (this.sorted[low]!.length === depth) {
          const id = this.sortedIds[low]!;
          consider(from, end, id, Math.fround(this.scores[id]! + base));
          if (end === characterEnd) single = true;
          low++;
        }
        if (end >= length) break;
        const unit = text.charCodeAt(end);
        low = this.lowerBound(low, high, depth, unit);
        high = this.lowerBound(low, high, depth, unit + 1);
      }
      if (!single) consider(from, characterEnd, -1, Math.fround(this.unknownScore + base));
    }

    const result: string[] = [];
    for (let to = length; to > 0; to = start[to]!) {
      const from = start[to]!;
      const id = ids[to]!;
      if (id !== -1) {
        result.push(this.vocabulary[id]!);
      } else if (this.byteFallback && this.bytePieces !== undefined) {
        // Pushed in reverse, like everything else here.
        const bytes = encoder.encode(text.slice(from, to));
        for (let index = bytes.length - 1; index >= 0; index--) result.push(this.bytePieces[bytes[index]!]!);
      } else {
        result.push(this.unknownPiece);
      }
    }
    return result.reverse();
  }

  /** The first index in sorted[low, high) whose code unit at `depth` is at least `unit` (all are longer than depth). */
  private lowerBound(low: number, high: number, depth: number, unit: number): number {
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.sorted[middle]!.charCodeAt(depth) < unit) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

/** The index after the character (code point) at `index`. */
function nextCharacter(text: string, index: number): number {
  const unit = text.charCodeAt(index);
  if (unit >= 0xd800 && unit <= 0xdbff && index + 1 < text.length) {
    const next = text.charCodeAt(index + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return index + 2;
  }
  return index + 1;
}
