import path from 'node:path';

import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import { isRecord, readModelJson } from './manifest.js';
import { createCharsmapNormalizer } from './sentencepiece/precompiled-charsmap.js';
import { installTokenizerHooks, type NormalizerReplacement } from './sentencepiece/transformers-js.js';
import { SentencePieceUnigram, type UnigramModelJson } from './sentencepiece/unigram.js';

export interface EncodeOptions {
  /** Add the model's special tokens (`[CLS] … [SEP]`). Default true. */
  addSpecialTokens?: boolean;
  /** Truncate to this many ids; the closing special token (`[SEP]`) is kept. */
  maxLength?: number;
}

export interface DecodeOptions {
  /** Drop `[CLS]`, `[SEP]`, `[PAD]` and the other special tokens. Default false. */
  skipSpecialTokens?: boolean;
}

/** The tokenizer of a model folder, reduced to what the runtime needs. */
export interface Tokenizer {
  encode(text: string, options?: EncodeOptions): number[];
  decode(ids: readonly number[], options?: DecodeOptions): string;
  /**
   * Size of the tokenizer model's own vocabulary, without added tokens (Python's `vocab_size`).
   * BLIP's `[DEC]` and `[ENC]` are added tokens, so their ids are at or above this.
   */
  readonly vocabSize: number;
  /** The id of a token (special ones included), or undefined when the tokenizer does not know it. */
  tokenToId(token: string): number | undefined;
}

/** What we use of transformers.js's `PreTrainedTokenizer`. */
interface TransformersTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  convert_tokens_to_ids(token: string): number | undefined;
  get_vocab(): Map<string, number> | Record<string, number>;
}

type TokenizerClass = new (tokenizerJson: object, tokenizerConfig: object) => TransformersTokenizer;

/**
 * Loads `tokenizer.json` and `tokenizer_config.json` from a model folder with transformers.js.
 *
 * The files are read here and handed to the tokenizer class that `AutoTokenizer` would pick (from
 * `tokenizer_class`), rather than calling `AutoTokenizer.from_pretrained(folder)`: that path goes
 * through transformers.js's hub layer, which probes for files with network requests when a path looks
 * like a hub id and `env.allowRemoteModels` is on, memoizes lookups per path, and reads the global
 * `env.localModelPath`. Reading the files ourselves never touches the network or the global `env`,
 * and works the same for any number of folders anywhere on disk.
 *
 * @throws ModelIntegrityError `missing_file` / `bad_manifest` for absent or malformed files.
 * @example
 * const tokenizer = await loadTokenizer('test/fixtures/models/tiny-vle');
 * const ids = tokenizer.encode('What color is the cat?', { maxLength: 50 }); // [1, …, 2]
 * tokenizer.decode(ids, { skipSpecialTokens: true }); // 'what color is the cat?'
 */
export async function loadTokenizer(folder: string): Promise<Tokenizer> {
  const absolute = path.resolve(folder);
  const [tokenizerJson, tokenizerConfig, transformers] = await Promise.all([
    readModelJson(absolute, 'tokenizer.json'),
    readModelJson(absolute, 'tokenizer_config.json'),
    // Loaded on first use: importing transformers.js costs hundreds of milliseconds.
    import('@huggingface/transformers'),
  ]);

  const className = typeof tokenizerConfig.tokenizer_class === 'string' ? tokenizerConfig.tokenizer_class.replace(/Fast$/, '') : 'PreTrainedTokenizer';
  const exported = (transformers as unknown as Record<string, unknown>)[className];
  const isTokenizerClass = typeof exported === 'function' && (exported === transformers.PreTrainedTokenizer || exported.prototype instanceof transformers.PreTrainedTokenizer);
  // Unknown names fall back to the base class, as AutoTokenizer does: the subclasses differ only in defaults.
  const Class = (isTokenizerClass ? exported : transformers.PreTrainedTokenizer) as unknown as TokenizerClass;

  let inner: TransformersTokenizer;
  try {
    inner = new Class(tokenizerJson, tokenizerConfig);
  } catch (error) {
    throw new ModelIntegrityError('bad_manifest', `${path.join(absolute, 'tokenizer.json')} could not be loaded: ${(error as Error).message}.`, {
      hint: 'Export the model again; the exporter writes a tokenizer.json that transformers.js reads.',
      cause: error,
    });
  }
  installTokenizerFixes(inner, tokenizerJson);
  return new FolderTokenizer(inner, modelVocabSize(tokenizerJson, inner));
}

/**
 * Where transformers.js tokenizes differently from the Python tokenizers the models were trained with, replaces its
 * implementation on this tokenizer (through ./sentencepiece/transformers-js.ts, which checks the internals it hooks):
 *
 *  - `Precompiled` normalizers (tokenizer.json converted from an spm.model: VLE's DeBERTa-v3): transformers.js ignores
 *    the charsmap and applies a fixed regex and `String.normalize('NFKC')`; here the charsmap is applied as
 *    SentencePiece applies it (./sentencepiece/precompiled-charsmap.ts).
 *  - `Unigram` models: segmented as SentencePiece segments, byte fallback included (./sentencepiece/unigram.ts).
 *  - `BertNormalizer` (BLIP's BERT tokenizer), see bertNormalizerFix.
 */
function installTokenizerFixes(inner: TransformersTokenizer, tokenizerJson: Record<string, unknown>): void {
  const model = tokenizerJson.model;
  let unigram: SentencePieceUnigram | undefined;
  if (isRecord(model) && model.type === 'Unigram') {
    if (!isUnigramModelJson(model)) {
      throw new ModelIntegrityError('bad_manifest', 'tokenizer.json has a Unigram model without a [piece, score] vocabulary and an unk_id.', {
        hint: 'Export the model again; the exporter writes a tokenizer.json that transformers.js reads.',
      });
    }
    // SentencePiece's control symbols ([PAD], [CLS], [SEP]) are pieces that are also special added tokens.
    const addedTokens = Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [];
    const controlIds = addedTokens.filter((token) => isRecord(token) && token.special === true && typeof token.id === 'number').map((token) => (token as { id: number }).id);
    unigram = new SentencePieceUnigram(model, { controlIds });
  }
  installTokenizerHooks(inner, tokenizerJson, {
    normalizer: (config) => {
      if (config.type === 'Precompiled' && typeof config.precompiled_charsmap === 'string' && config.precompiled_charsmap.length > 0) {
        const normalize = createCharsmapNormalizer(config.precompiled_charsmap);
        return (text) => normalize(text);
      }
      if (config.type === 'BertNormalizer') return bertNormalizerFix(config);
      return undefined;
    },
    model: unigram === undefined ? undefined : (chunk) => unigram.encode(chunk),
  });
}

function isUnigramModelJson(model: Record<string, unknown>): model is Record<string, unknown> & UnigramModelJson {
  return (
    Number.isInteger(model.unk_id) &&
    Array.isArray(model.vocab) &&
    model.vocab.every((entry) => Array.isArray(entry) && typeof entry[0] === 'string' && typeof entry[1] === 'number')
  );
}

/** CJK ideographs outside the Basic Multilingual Plane, as BERT's `_is_chinese_char` lists them (extensions B-F, compatibility supplement). */
const ASTRAL_CJK_IDEOGRAPH = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/gu;

/**
 * What transformers.js's BertNormalizer does differently from BERT's tokenizers (slow and fast), fixed in front of it:
 *  - `handle_chinese_chars` puts spaces around CJK ideographs, but transformers.js looks at UTF-16 code units and so
 *    never sees those outside the BMP (𠮷, 𩸽, …): they are padded here first.
 *  - `lowercase` lowercases the whole string, so a word-final capital sigma becomes final `ς`; BERT lowercases one
 *    character at a time, which gives `σ`. Σ is mapped to σ here first.
 */
function bertNormalizerFix(config: Record<string, unknown>): NormalizerReplacement | undefined {
  const padIdeographs = Boolean(config.handle_chinese_chars);
  const lowercase = Boolean(config.lowercase);
  if (!padIdeographs && !lowercase) return undefined;
  return (text, original) => {
    if (padIdeographs) text = text.replace(ASTRAL_CJK_IDEOGRAPH, ' $& ');
    if (lowercase) text = text.replaceAll('\u03A3', '\u03C3');
    return original(text);
  };
}

class FolderTokenizer implements Tokenizer {
  constructor(
    private readonly inner: TransformersTokenizer,
    readonly vocabSize: number,
  ) {}

  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecialTokens = options.addSpecialTokens ?? true;
    const { maxLength } = options;
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) {
      throw new InvalidOptionError('invalid_value', `maxLength must be a positive integer, not ${String(maxLength)}.`);
    }
    const ids = this.inner.encode(text, { add_special_tokens: addSpecialTokens });
    if (maxLength === undefined || ids.length <= maxLength) return ids;
    if (!addSpecialTokens) return ids.slice(0, maxLength);

    // Truncate the text's ids, not the template around them, as Python's truncation does.
    const content = this.inner.encode(text, { add_special_tokens: false });
    const specialCount = ids.length - content.length;
    if (maxLength < specialCount) {
      throw new InvalidOptionError('invalid_value', `maxLength ${maxLength} leaves no room for the ${specialCount} special tokens the tokenizer adds.`);
    }
    const prefixLength = findPrefixLength(ids, content, specialCount);
    if (prefixLength === undefined) return [...ids.slice(0, maxLength - 1), ids[ids.length - 1]!];
    return [
      ...ids.slice(0, prefixLength),
      ...content.slice(0, maxLength - specialCount),
      ...ids.slice(prefixLength + content.length),
    ];
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    // transformers.js throws on an empty list; an empty caption is a valid result.
    if (ids.length === 0) return '';
    return this.inner.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    const id = this.inner.convert_tokens_to_ids(token);
    return typeof id === 'number' ? id : undefined;
  }
}

/** Where the text's own ids start inside the ids with special tokens, when the template kept them intact. */
function findPrefixLength(ids: number[], content: number[], specialCount: number): number | undefined {
  for (let start = 0; start <= specialCount; start++) {
    if (content.every((id, index) => ids[start + index] === id)) return start;
  }
  return undefined;
}

function modelVocabSize(tokenizerJson: Record<string, unknown>, inner: TransformersTokenizer): number {
  const model = tokenizerJson.model;
  if (isRecord(model)) {
    // WordPiece and BPE store a token -> id map, Unigram a list of [piece, score].
    if (Array.isArray(model.vocab)) return model.vocab.length;
    if (isRecord(model.vocab)) return Object.keys(model.vocab).length;
  }
  const vocab = inner.get_vocab();
  return vocab instanceof Map ? vocab.size : Object.keys(vocab).length;
}
