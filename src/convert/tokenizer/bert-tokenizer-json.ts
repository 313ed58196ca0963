/**
 * A BERT WordPiece tokenizer.json built from a vocabulary list: the port of models/vqa_llm_export/bert_tokenizer.py
 * (the layout the `tokenizers` library saves for bert-base-uncased), for BLIP checkpoints that ship vocab.txt only.
 */
import { ConversionError } from '../../errors/conversion-error.js';
import type { PythonJson } from './python-json.js';

const SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

const specialTokenNames = { unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' };

/**
 * The tokens of a vocab.txt, as bert_tokenizer.read_vocab reads them: one per line (Python's universal newlines:
 * `\n`, `\r\n` or `\r`), empty lines dropped, nothing else stripped.
 *
 * @throws ConversionError `bad_tokenizer` when the file is not UTF-8.
 * @example
 * parseVocab(Buffer.from('[PAD]\n[UNK]\n'), { file: 'vocab.txt' }); // ['[PAD]', '[UNK]']
 */
export function parseVocab(bytes: Uint8Array, options: { file: string }): string[] {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (error) {
    throw new ConversionError('bad_tokenizer', `${options.file} is not UTF-8 text.`, { file: options.file, cause: error });
  }
  return text.split(/\r\n|\r|\n/).filter((line) => line !== '');
}

/**
 * bert_tokenizer.tokenizer_json: the tokenizer.json of a lowercasing BERT WordPiece tokenizer over `vocab`.
 *
 * @throws ConversionError `bad_tokenizer` for a duplicate token or a missing special token.
 * @example
 * const json = bertTokenizerJson(parseVocab(await readFile('vocab.txt'), { file: 'vocab.txt' }), { file: 'vocab.txt' });
 */
export function bertTokenizerJson(vocab: readonly string[], options: { file: string }): PythonJson {
  const ids = new Map<string, number>();
  vocab.forEach((token, index) => {
    if (ids.has(token)) {
      throw new ConversionError('bad_tokenizer', `${options.file} lists the token ${JSON.stringify(token)} twice (lines ${ids.get(token)! + 1} and ${index + 1}, empty lines not counted).`, {
        file: options.file,
        key: token,
      });
    }
    ids.set(token, index);
  });
  for (const token of SPECIAL_TOKENS) {
    if (!ids.has(token)) {
      throw new ConversionError('bad_tokenizer', `${options.file} lacks the BERT special token ${token}.`, { file: options.file, key: token });
    }
  }
  const idOf = (token: string) => ids.get(token)!;
  const added = [...SPECIAL_TOKENS]
    .sort((a, b) => idOf(a) - idOf(b))
    .map((token) => ({ id: idOf(token), content: token, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const special = (token: string, typeId = 0) => ({ SpecialToken: { id: token, type_id: typeId } });
  const sequence = (id: string, typeId: number) => ({ Sequence: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special('[CLS]'), sequence('A', 0), special('[SEP]')],
      pair: [special('[CLS]'), sequence('A', 0), special('[SEP]'), sequence('B', 1), special('[SEP]', 1)],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [idOf('[CLS]')], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [idOf('[SEP]')], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: ids },
  };
}

/** bert_tokenizer.write_bert_tokenizer's tokenizer_config.json. */
export function bertTokenizerConfig(options: { modelMaxLength?: number } = {}): PythonJson {
  return {
    tokenizer_class: 'BertTokenizer',
    processor_class: 'BlipProcessor',
    do_lower_case: true,
    tokenize_chinese_chars: true,
    strip_accents: null,
    clean_up_tokenization_spaces: true,
    model_max_length: options.modelMaxLength ?? 512,
    ...specialTokenNames,
  };
}

/** bert_tokenizer.write_bert_tokenizer's special_tokens_map.json. */
export function bertSpecialTokensMap(): PythonJson {
  return { ...specialTokenNames };
}
