/**
 * tokenizer.json from a SentencePiece model, exactly as the exporter builds it (models/vqa_llm_export/vle.py
 * spm_tokenizer_json): transformers' `SpmConverter.build_tokenizer_from_spm_proto(proto, vocab, legacy=True)` with a
 * [piece, score] list (a Unigram model), DeBERTa-v3's special tokens added, and `[CLS] … [SEP]` around the text.
 *
 * Everything the tokenizer does comes from the model's own specs, as SentencePiece itself applies them:
 *  - normalizer: the precompiled charsmap (for DeBERTa-v3, nmt_nfkc), then SentencePiece's whitespace rules — extra
 *    spaces removed, spaces escaped as `▁`, and (legacy) a text already starting with `▁` still gets its dummy prefix;
 *  - pre-tokenizer: the dummy prefix on every stretch between added tokens (`prepend_scheme: always`), and the
 *    user-defined pieces split off whole (SentencePiece never merges them);
 *  - model: Unigram over every piece with its float32 score, byte fallback as the trainer set it.
 * The key order of every object is the one the `tokenizers` library serialises, so the file's text matches too.
 */
import { ConversionError } from '../../errors/conversion-error.js';
import { PrecompiledCharsmap } from '../../models/sentencepiece/precompiled-charsmap.js';
import { PythonFloat, type PythonJson } from './python-json.js';
import { PieceType, type SentencePieceModel } from './sentencepiece-model.js';

/** DeBERTa-v3's control pieces 0-3 of its spm.model, which become special tokens. */
export const DEBERTA_SPECIAL_PIECES = ['[PAD]', '[CLS]', '[SEP]', '[UNK]'] as const;
/** Not a piece of DeBERTa-v3's spm.model: its tokenizer adds it after the last piece. */
export const DEBERTA_MASK_TOKEN = '[MASK]';

export interface SpmTokenizerJsonOptions {
  /** The spm.model's name in errors. */
  file: string;
  /** Lowercase the text before SentencePiece sees it (the checkpoint's tokenizer_config.json `do_lower_case`). */
  doLowerCase?: boolean;
  /** The checkpoint's added_tokens.json: each token must get this id. */
  addedTokens?: Record<string, unknown>;
  /** added_tokens.json's name in errors. */
  addedTokensFile?: string;
}

/**
 * The tokenizer.json the exporter writes for this SentencePiece model.
 *
 * @throws ConversionError `bad_tokenizer` when a DeBERTa special piece is missing, the unknown-piece id or the
 * charsmap is not usable, or added_tokens.json gives a token another id than the conversion.
 * @example
 * const model = readSentencePieceModel(await readFile('spm.model'), { file: 'spm.model' });
 * const tokenizerJson = spmTokenizerJson(model, { file: 'spm.model', addedTokens: { '[MASK]': 128000 } });
 */
export function spmTokenizerJson(model: SentencePieceModel, options: SpmTokenizerJsonOptions): PythonJson {
  const { file } = options;
  const { pieces, trainerSpec } = model;
  const bad = (message: string, extra: { key?: string; file?: string; cause?: unknown } = {}) =>
    new ConversionError('bad_tokenizer', message, { file, ...extra });

  if (!Number.isInteger(trainerSpec.unkId) || trainerSpec.unkId < 0 || trainerSpec.unkId >= pieces.length) {
    throw bad(`${file} gives the unknown piece id ${trainerSpec.unkId}, outside its ${pieces.length} pieces.`);
  }

  const unscored = pieces.findIndex((piece) => !Number.isFinite(piece.score));
  if (unscored !== -1) {
    // The exporter would write null there (serde_json's NaN), which no tokenizer loads.
    throw bad(`${file} gives piece ${unscored} (${JSON.stringify(pieces[unscored]!.piece)}) the score ${pieces[unscored]!.score}.`, { key: pieces[unscored]!.piece });
  }

  // The `tokenizers` Unigram model maps a piece listed twice to its last id.
  const modelIds = new Map<string, number>();
  pieces.forEach((piece, id) => modelIds.set(piece.piece, id));
  for (const token of DEBERTA_SPECIAL_PIECES) {
    if (!modelIds.has(token)) throw bad(`${file} has no ${token} piece: not a DeBERTa-v3 SentencePiece model.`, { key: token });
  }

  // Added tokens keep a piece's id, else come after the last piece (the `tokenizers` AddedVocabulary rule).
  const addedIds = new Map<string, number>();
  for (const token of [...DEBERTA_SPECIAL_PIECES, DEBERTA_MASK_TOKEN]) {
    const existing = addedIds.get(token) ?? modelIds.get(token);
    if (existing !== undefined) {
      addedIds.set(token, existing);
      continue;
    }
    const highest = Math.max(-1, ...addedIds.values());
    addedIds.set(token, highest >= pieces.length || pieces.length === 0 ? highest + 1 : pieces.length);
  }
  const tokenToId = (token: string) => addedIds.get(token) ?? modelIds.get(token);
  for (const [token, index] of Object.entries(options.addedTokens ?? {})) {
    const id = tokenToId(token);
    if (id !== index) {
      throw bad(`${options.addedTokensFile ?? 'added_tokens.json'} gives ${token} id ${JSON.stringify(index)}, the conversion of ${file} ${id ?? 'no id'}.`, {
        key: token,
        file: options.addedTokensFile ?? file,
      });
    }
  }

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...addedIds.entries()]
      .sort((a, b) => a[1] - b[1])
      .map(([content, id]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: normalizer(model, options.doLowerCase ?? false, bad, file),
    pre_tokenizer: preTokenizer(model),
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]'), sequence('A', 0), special('[SEP]')],
      pair: [special('[CLS]'), sequence('A', 0), special('[SEP]'), sequence('B', 1), special('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [tokenToId('[CLS]')!], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [tokenToId('[SEP]')!], tokens: ['[SEP]'] },
      },
    },
    decoder: decoder(model),
    model: {
      type: 'Unigram',
      unk_id: trainerSpec.unkId,
      vocab: pieces.map((piece) => [piece.piece, new PythonFloat(piece.score)]),
      byte_fallback: trainerSpec.byteFallback,
    },
  };
}

const special = (token: string, typeId = 0) => ({ SpecialToken: { id: token, type_id: typeId } });
const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
const replace = (pattern: { Regex: string } | { String: string }, content: string) => ({ type: 'Replace', pattern, content });

function normalizer(model: SentencePieceModel, doLowerCase: boolean, bad: (message: string, extra?: { cause?: unknown }) => ConversionError, file: string): PythonJson {
  const spec = model.normalizerSpec;
  const steps: PythonJson[] = [];
  if (spec.precompiledCharsmap.length > 0) {
    const base64 = Buffer.from(spec.precompiledCharsmap).toString('base64');
    try {
      // The runtime applies the charsmap itself (src/models/sentencepiece): refuse now what it would refuse later.
      new PrecompiledCharsmap(base64);
    } catch (error) {
      throw bad(`${file} has a precompiled_charsmap SentencePiece cannot use (${(error as Error).message}).`, { cause: error });
    }
    steps.push({ type: 'Precompiled', precompiled_charsmap: base64 });
  }
  if (spec.removeExtraWhitespaces) {
    // Only spaces count: SentencePiece leaves other whitespace, such as newlines, alone.
    steps.push(replace({ Regex: '\\A +| +\\z' }, ''), replace({ Regex: ' {2,}' }, ' '));
  }
  if (spec.escapeWhitespaces) steps.push(replace({ String: ' ' }, '\u2581'));
  // legacy: Metaspace skips the dummy prefix when the text already starts with "▁", SentencePiece does not.
  if (spec.addDummyPrefix) steps.push(replace({ Regex: '\\A\u2581' }, '\u2581\u2581'));
  // The slow DeBERTa tokenizer lowercases the text before SentencePiece sees it. (The exporter nests a Sequence in
  // a Sequence; the `tokenizers` library flattens it, and so does this.)
  return { type: 'Sequence', normalizers: doLowerCase ? [{ type: 'Lowercase' }, ...steps] : steps };
}

function preTokenizer(model: SentencePieceModel): PythonJson {
  const steps: PythonJson[] = [];
  if (model.normalizerSpec.addDummyPrefix) steps.push({ type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false });
  const userDefined = model.pieces.filter((piece) => piece.type === PieceType.userDefined).map((piece) => piece.piece);
  if (userDefined.length > 0) {
    // Longest first (in code points, as Python's len counts; the sort is stable, as Python's is).
    const pattern = [...userDefined]
      .sort((a, b) => [...b].length - [...a].length)
      .map(pythonReEscape)
      .join('|');
    steps.push({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });
  }
  return steps.length === 0 ? null : { type: 'Sequence', pretokenizers: steps };
}

function decoder(model: SentencePieceModel): PythonJson {
  const steps: PythonJson[] = [replace({ String: '\u2581' }, ' ')];
  if (model.trainerSpec.byteFallback) steps.push({ type: 'ByteFallback' });
  if (model.normalizerSpec.addDummyPrefix) {
    // `Strip` applies to each token, so the tokens are fused first to strip only the start of the text.
    steps.push({ type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 });
  } else if (model.trainerSpec.byteFallback) {
    steps.push({ type: 'Fuse' });
  }
  return { type: 'Sequence', decoders: steps };
}

/** Python 3.7+'s `re.escape`: a backslash before each of its special characters, nothing else. */
function pythonReEscape(text: string): string {
  return text.replace(/[()[\]{}?*+\-|^$\\.&~# \t\n\r\v\f]/g, '\\$&');
}
