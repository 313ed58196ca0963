import path from 'node:path';

import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import { isRecord, readModelJson } from './manifest.js';

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
  if (isRecord(tokenizerJson.model) && tokenizerJson.model.type === 'Unigram' && tokenizerJson.model.byte_fallback === true) {
    addUnigramByteFallback(inner);
  }
  return new FolderTokenizer(inner, modelVocabSize(tokenizerJson, inner));
}

/** The part of transformers.js's Unigram model that byte fallback wraps. */
interface UnigramModel {
  encode(tokens: string[]): string[];
  tokens_to_ids: Map<string, number>;
}

/**
 * SentencePiece's byte fallback, which transformers.js's Unigram model lacks: a piece the vocabulary does not have
 * becomes the `<0xXX>` pieces of its UTF-8 bytes (when the vocabulary has them all) instead of the unknown token.
 * DeBERTa-v3's spm.model (VLE's tokenizer) uses it, and upstream's SentencePiece tokenizer applies it, so "café" is
 * `c a f <0xC3> <0xA9>` there, not `c a f [UNK]`. transformers.js's lattice returns the unknown characters as the
 * piece itself, so wrapping `encode` is enough.
 */
function addUnigramByteFallback(inner: TransformersTokenizer): void {
  const model = (inner as unknown as { _tokenizer?: { model?: Partial<UnigramModel> } })._tokenizer?.model;
  if (typeof model?.encode !== 'function' || !(model.tokens_to_ids instanceof Map)) {
    throw new ModelIntegrityError('bad_manifest', 'tokenizer.json asks for byte fallback, which this version of transformers.js cannot be given.', {
      hint: 'Use the @huggingface/transformers version vqa-llm pins.',
    });
  }
  const vocabulary = model.tokens_to_ids;
  const encode = model.encode.bind(model);
  const encoder = new TextEncoder();
  model.encode = (tokens: string[]): string[] =>
    encode(tokens).flatMap((piece) => {
      if (vocabulary.has(piece)) return [piece];
      const bytes = Array.from(encoder.encode(piece), (byte) => `<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`);
      return bytes.every((token) => vocabulary.has(token)) ? bytes : [piece];
    });
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
