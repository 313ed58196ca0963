/**
 * Tokenizer files of a model folder from an upstream checkpoint, in Node alone: BLIP's BERT tokenizer (copied, or
 * built from vocab.txt) and VLE's DeBERTa-v3 SentencePiece model converted to tokenizer.json. The files equal the
 * Python exporter's, byte for byte where the exporter builds them.
 */
export { writeBlipTokenizerFiles, BLIP_TOKENIZER_FILES } from './blip-tokenizer-files.js';
export { writeVleTokenizerFiles, type VleTokenizerFilesOptions } from './vle-tokenizer-files.js';
export { readSentencePieceModel, type SentencePieceModel, type SentencePiece } from './sentencepiece-model.js';
export { spmTokenizerJson, type SpmTokenizerJsonOptions } from './spm-tokenizer-json.js';
export { bertTokenizerJson, parseVocab } from './bert-tokenizer-json.js';
export { formatPythonJson, parsePythonJson, PythonFloat, type PythonJson } from './python-json.js';
