/**
 * The tokenizer files of a BLIP model folder from a BLIP checkpoint, as the exporter writes them
 * (models/vqa_llm_export/blip.py write_folder_files, bert_tokenizer.write_bert_tokenizer with only_missing).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { ConversionError } from '../../errors/conversion-error.js';
import { bertSpecialTokensMap, bertTokenizerConfig, bertTokenizerJson, parseVocab } from './bert-tokenizer-json.js';
import { copyInto, exists, writePythonJson } from './checkpoint-files.js';
import type { PythonJson } from './python-json.js';

/** The checkpoint's tokenizer files the exporter copies as they are (blip.TOKENIZER_FILES). */
export const BLIP_TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt'] as const;

/**
 * Copies the checkpoint's tokenizer.json, tokenizer_config.json, special_tokens_map.json and vocab.txt into `outDir`
 * (those it has); when there is no tokenizer.json, builds it from vocab.txt (a lowercasing BERT WordPiece tokenizer,
 * as bert-base-uncased's), with tokenizer_config.json and special_tokens_map.json where the checkpoint lacks them.
 *
 * Returns the names of the files written. Never runs Python.
 *
 * @throws ConversionError `missing_file` when the checkpoint has neither tokenizer.json nor vocab.txt;
 * `bad_tokenizer` for a vocab.txt that is not UTF-8, repeats a token or lacks a BERT special token.
 * @example
 * const written = await writeBlipTokenizerFiles('checkpoints/blip-image-captioning-base', 'models/blip-base');
 * // ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'vocab.txt']
 */
export async function writeBlipTokenizerFiles(checkpointDir: string, outDir: string): Promise<string[]> {
  // Like the exporter, a tokenizer.json already in the output folder counts too.
  const needsBuild = !(await exists(path.join(checkpointDir, 'tokenizer.json'))) && !(await exists(path.join(outDir, 'tokenizer.json')));
  // Built before anything is copied, so that a bad vocabulary leaves the output folder as it was.
  const built = needsBuild ? await buildFromVocab(checkpointDir) : [];

  const written: string[] = [];
  for (const name of BLIP_TOKENIZER_FILES) {
    const source = path.join(checkpointDir, name);
    if (await exists(source)) {
      await copyInto(source, outDir, name);
      written.push(name);
    }
  }
  // write_bert_tokenizer(only_missing=True): the checkpoint's own files, just copied, win (vocab.txt always is).
  for (const [name, value] of built) {
    if (await exists(path.join(outDir, name))) continue;
    await writePythonJson(outDir, name, value);
    written.push(name);
  }
  return written;
}

async function buildFromVocab(checkpointDir: string): Promise<[string, PythonJson][]> {
  const vocabFile = path.join(checkpointDir, 'vocab.txt');
  if (!(await exists(vocabFile))) {
    throw new ConversionError('missing_file', `${checkpointDir} has neither tokenizer.json nor vocab.txt: a BLIP checkpoint needs its BERT tokenizer.`, {
      file: vocabFile,
      hint: 'Download the checkpoint again with its tokenizer files.',
    });
  }
  const vocab = parseVocab(await readFile(vocabFile), { file: vocabFile });
  return [
    ['tokenizer.json', bertTokenizerJson(vocab, { file: vocabFile })],
    ['tokenizer_config.json', bertTokenizerConfig()],
    ['special_tokens_map.json', bertSpecialTokensMap()],
  ];
}
