/**
 * SentencePiece's character normalization from a `precompiled_charsmap` (the `Precompiled` normalizer of a
 * tokenizer.json converted from an spm.model), done as SentencePiece's `Normalizer::NormalizePrefix` does it.
 *
 * The charsmap is the spm.model's `normalizer_spec.precompiled_charsmap`: a little-endian uint32 with the byte size of
 * a darts-clone double-array trie, the trie (uint32 units), then a pool of NUL-terminated UTF-8 replacement strings.
 * The trie maps UTF-8 byte sequences to offsets in the pool. At each position of the text, SentencePiece takes the
 * longest key that is a prefix of the remaining UTF-8 bytes and emits its replacement; where no key matches it copies
 * one character unchanged. For DeBERTa-v3's `nmt_nfkc` map that is NFKC plus SentencePiece's own rules (Unicode
 * spaces to U+0020, most control and format characters removed, ZWJ kept, …) — not what `String.normalize('NFKC')`
 * gives, which is what transformers.js's `Precompiled` normalizer applies instead of reading the map.
 *
 * Only the character mapping is done here; SentencePiece's whitespace handling (leading, trailing and repeated
 * spaces, `▁`, the dummy prefix) is in the tokenizer.json as `Replace` normalizers and the `Metaspace` pre-tokenizer.
 */
import { ModelIntegrityError } from '../../errors/model-integrity-error.js';

/** A normalization function over a charsmap. */
export type CharsmapNormalizer = (text: string) => string;

/**
 * A normalizer for a base64 `precompiled_charsmap`.
 *
 * @throws ModelIntegrityError `bad_manifest` when the charsmap is not a SentencePiece charsmap.
 * @example
 * const normalize = createCharsmapNormalizer(tokenizerJson.normalizer.normalizers[0].precompiled_charsmap);
 * normalize('ﬁ？\u3000①'); // 'fi? 1'
 */
export function createCharsmapNormalizer(base64: string): CharsmapNormalizer {
  const charsmap = new PrecompiledCharsmap(base64);
  return (text) => charsmap.normalize(text);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Byte length of the UTF-8 sequence a lead byte starts (what the encoder wrote is always well-formed). */
const utf8Length = (lead: number): number => (lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4);

/** @internal Exported for tests. */
export class PrecompiledCharsmap {
  private readonly units: Uint32Array;
  private readonly pool: Uint8Array;
  private readonly replacements = new Map<number, string>();

  constructor(base64: string) {
    const blob = Buffer.from(base64, 'base64');
    const broken = (why: string) =>
      new ModelIntegrityError('bad_manifest', `tokenizer.json has a precompiled_charsmap that is not a SentencePiece charsmap: ${why}.`, {
        hint: 'Export the model again; the exporter copies the charsmap from the spm.model.',
      });
    if (blob.length <= 4) throw broken('it is too short');
    const trieSize = blob.readUInt32LE(0);
    if (trieSize === 0 || trieSize % 4 !== 0 || 4 + trieSize > blob.length) throw broken(`its trie size ${trieSize} does not fit its ${blob.length} bytes`);
    this.units = new Uint32Array(trieSize / 4);
    for (let index = 0; index < this.units.length; index++) this.units[index] = blob.readUInt32LE(4 + index * 4);
    this.pool = new Uint8Array(blob.subarray(4 + trieSize));
  }

  /** The text with every charsmap rule applied, longest match first, left to right. */
  normalize(text: string): string {
    const bytes = encoder.encode(text);
    let output = '';
    // Bytes copied unchanged are decoded in runs, not one character at a time.
    let copyFrom = 0;
    let position = 0;
    while (position < bytes.length) {
      const match = this.longestMatch(bytes, position);
      if (match === undefined) {
        position += utf8Length(bytes[position]!);
        continue;
      }
      if (copyFrom < position) output += decoder.decode(bytes.subarray(copyFrom, position));
      output += this.replacement(match.value);
      position += match.length;
      copyFrom = position;
    }
    if (copyFrom < bytes.length) output += decoder.decode(bytes.subarray(copyFrom));
    return output;
  }

  /**
   * darts-clone's `commonPrefixSearch` from `start`, keeping the longest key: its byte length and value (an offset in
   * the replacement pool), or undefined when no key is a prefix of the bytes there.
   */
  private longestMatch(bytes: Uint8Array, start: number): { length: number; value: number } | undefined {
    const units = this.units;
    let node = offsetOf(units[0]!);
    let found: { length: number; value: number } | undefined;
    for (let index = start; index < bytes.length; index++) {
      const byte = bytes[index]!;
      node ^= byte;
      const unit = units[node];
      if (unit === undefined || labelOf(unit) !== byte) break;
      node ^= offsetOf(unit);
      if (hasLeaf(unit)) {
        const leaf = units[node];
        if (leaf === undefined) break;
        found = { length: index + 1 - start, value: leaf & 0x7fffffff };
      }
    }
    return found;
  }

  private replacement(offset: number): string {
    let text = this.replacements.get(offset);
    if (text === undefined) {
      let end = offset;
      while (end < this.pool.length && this.pool[end] !== 0) end++;
      text = decoder.decode(this.pool.subarray(offset, end));
      this.replacements.set(offset, text);
    }
    return text;
  }
}

// darts-clone's DoubleArrayUnit accessors.
const hasLeaf = (unit: number): boolean => ((unit >>> 8) & 1) === 1;
const labelOf = (unit: number): number => (unit & (0x80000000 | 0xff)) >>> 0;
const offsetOf = (unit: number): number => (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
