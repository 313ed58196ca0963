/**
 * The tokenizer files of a VLE model folder from a VLE / DeBERTa-v3 checkpoint, as the exporter writes them
 * (models/vqa_llm_export/vle.py convert_spm_tokenizer and tokenizer_side_files).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { ConversionError } from '../../errors/conversion-error.js';
import { InvalidOptionError } from '../../errors/invalid-option-error.js';
import { exists, pythonTruthy, readJsonObjectIfExists, readPythonJson, writePythonJson } from './checkpoint-files.js';
import type { PythonJson } from './python-json.js';
import { readSentencePieceModel } from './sentencepiece-model.js';
import { spmTokenizerJson } from './spm-tokenizer-json.js';

export interface VleTokenizerFilesOptions {
  /** tokenizer_config.json's `model_max_length`. Default 512, as the exporter writes. */
  modelMaxLength?: number;
}

/**
 * Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json into `outDir` from the checkpoint folder's
 * spm.model (with its tokenizer_config.json `do_lower_case` and added_tokens.json honoured), or, when it has no
 * spm.model, from its tokenizer.json as it is. spm.model wins over a tokenizer.json beside it: one saved by
 * transformers 5 lacks SentencePiece's normalization map, so its ids differ from upstream's.
 *
 * Returns the names of the files written. Never runs Python.
 *
 * @throws InvalidOptionError `invalid_value` for a modelMaxLength that is not a positive integer.
 * @throws ConversionError `missing_file` when the checkpoint has neither spm.model nor tokenizer.json;
 * `bad_tokenizer` for an spm.model that is damaged, not SentencePiece, or lacks DeBERTa's special pieces, and for an
 * added_tokens.json that disagrees with the conversion.
 * @example
 * const written = await writeVleTokenizerFiles('checkpoints/vle-base-for-vqa', 'models/vle-base');
 * // ['tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.json']
 */
export async function writeVleTokenizerFiles(checkpointDir: string, outDir: string, options: VleTokenizerFilesOptions = {}): Promise<string[]> {
  const modelMaxLength = options.modelMaxLength ?? 512;
  if (!Number.isSafeInteger(modelMaxLength) || modelMaxLength < 1) {
    throw new InvalidOptionError('invalid_value', `modelMaxLength must be a positive integer, not ${String(options.modelMaxLength)}.`);
  }
  const configFile = path.join(checkpointDir, 'tokenizer_config.json');
  const upstreamConfig = (await readJsonObjectIfExists(configFile)) ?? {};
  const doLowerCase = pythonTruthy(upstreamConfig.do_lower_case ?? false);

  const spmFile = path.join(checkpointDir, 'spm.model');
  const tokenizerFile = path.join(checkpointDir, 'tokenizer.json');
  let tokenizerJson: PythonJson;
  if (await exists(spmFile)) {
    const addedTokensFile = path.join(checkpointDir, 'added_tokens.json');
    const addedTokens = await readJsonObjectIfExists(addedTokensFile);
    const model = readSentencePieceModel(await readFile(spmFile), { file: spmFile });
    tokenizerJson = spmTokenizerJson(model, { file: spmFile, doLowerCase, addedTokens, addedTokensFile });
  } else if (await exists(tokenizerFile)) {
    // Used as it is, re-written as the exporter's json.load + write_json would.
    tokenizerJson = await readPythonJson(tokenizerFile);
  } else {
    throw new ConversionError('missing_file', `${checkpointDir} has neither spm.model nor tokenizer.json: a VLE checkpoint needs its DeBERTa-v3 tokenizer.`, {
      file: spmFile,
      hint: 'Download the checkpoint again with its spm.model.',
    });
  }

  const files: [string, PythonJson][] = [
    ['tokenizer_config.json', debertaTokenizerConfig({ doLowerCase, modelMaxLength })],
    ['special_tokens_map.json', { ...debertaSpecialTokens }],
    ['tokenizer.json', tokenizerJson],
  ];
  for (const [name, value] of files) await writePythonJson(outDir, name, value);
  return files.map(([name]) => name);
}

const debertaSpecialTokens = {
  bos_token: '[CLS]',
  eos_token: '[SEP]',
  unk_token: '[UNK]',
  sep_token: '[SEP]',
  pad_token: '[PAD]',
  cls_token: '[CLS]',
  mask_token: '[MASK]',
};

/** vle.tokenizer_side_files' tokenizer_config.json. */
function debertaTokenizerConfig(options: { doLowerCase: boolean; modelMaxLength: number }): PythonJson {
  return {
    tokenizer_class: 'DebertaV2Tokenizer',
    do_lower_case: options.doLowerCase,
    split_by_punct: false,
    ...debertaSpecialTokens,
    model_max_length: options.modelMaxLength,
    padding_side: 'right',
    truncation_side: 'right',
    clean_up_tokenization_spaces: false,
  };
}
