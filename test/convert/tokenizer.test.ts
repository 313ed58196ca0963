// The tokenizer half of converting an upstream checkpoint without Python (src/convert/tokenizer): BLIP's BERT
// tokenizer copied or built from vocab.txt, VLE's DeBERTa-v3 spm.model converted to tokenizer.json, and the typed
// errors of damaged or foreign inputs. These run without the Python fixtures: they use the committed 128,000-piece
// spm.model and 30,522-token vocab.txt (test/fixtures/upstream/tokenizers). test/convert/tokenizer-upstream.test.ts
// compares the same conversions with the exporter's files and transformers' ids when those fixtures exist.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  formatPythonJson,
  PythonFloat,
  readSentencePieceModel,
  writeBlipTokenizerFiles,
  writeVleTokenizerFiles,
} from '../../dist/src/convert/tokenizer/index.js';
import { formatFloat } from '../../dist/src/convert/tokenizer/python-json.js';
import { ConversionError } from '../../dist/src/errors/conversion-error.js';
import { InvalidOptionError } from '../../dist/src/errors/invalid-option-error.js';
import { loadTokenizer } from '../../dist/src/models/tokenizer.js';
import { root } from '../helpers/fixtures.js';

const fixtures = path.join(root, 'test', 'fixtures', 'upstream', 'tokenizers');

/**
 * sha256 of the files the Python exporter writes from the committed spm.model / vocab.txt (transformers 5.24.0,
 * tokenizers 0.22: models/vqa_llm_upstream/tokenizers.py writes them into test/output/upstream/tokenizers/vle and
 * blip-vocab-only). If spm.model or vocab.txt is ever retrained, take the new values from those files.
 */
const EXPORTER_SHA256 = {
  vleTokenizerJson: '37c470f43d5cd8cf1816c927fde0d25ed089c8a9429a2d26bf9c81400439aa46',
  vleTokenizerConfig: '8626e46fa1cbc3321ae306ebb218bfac15105cdf98548cd395afc3e79e6e2566',
  blipVocabOnlyTokenizerJson: '981124e81dd0c1c150139ba3f9373820825b495a59d9522aef3d74823a86b930',
  blipVocabOnlyTokenizerConfig: 'c977f94d79425c7d3837d69118bacdeb900b5057270c19062c1039345cdb325c',
};

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

let scratch: string;
let spm: Buffer;
let vocab: string;
beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'vqa-llm-tokenizer-'));
  spm = await readFile(path.join(fixtures, 'spm.model'));
  vocab = await readFile(path.join(fixtures, 'vocab.txt'), 'utf8');
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

let folderCount = 0;
/** A fresh checkpoint folder holding `files`. */
async function checkpoint(files: Record<string, string | Uint8Array>): Promise<string> {
  const folder = path.join(scratch, `checkpoint-${folderCount++}`);
  await mkdir(folder, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(folder, name), content);
  return folder;
}
const outFolder = () => path.join(scratch, `out-${folderCount++}`);

/** The error `promise` rejects with, checked to be a ConversionError. */
async function conversionError(promise: Promise<unknown>): Promise<ConversionError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(ConversionError.isInstance(error), `expected a ConversionError, got ${String(error)}`).toBe(true);
  return error as ConversionError;
}

/** `bytes` with every occurrence of `from` replaced by `to` (same length, so the protobuf stays well-formed). */
function replaceBytes(bytes: Buffer, from: string, to: string): Buffer {
  expect(to.length).toBe(from.length);
  const copy = Buffer.from(bytes);
  const needle = Buffer.from(from);
  for (let at = copy.indexOf(needle); at !== -1; at = copy.indexOf(needle, at + 1)) copy.write(to, at);
  return copy;
}

/** Byte length of the first `count` top-level length-delimited fields (the first pieces of an spm.model). */
function firstFieldsLength(bytes: Buffer, count: number): number {
  let at = 0;
  for (let index = 0; index < count; index++) {
    at += 1; // tag 0x0a: field 1, length-delimited
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const byte = bytes[at++]!;
      length |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
    }
    at += length;
  }
  return at;
}

/** Protobuf encoding, enough to write small SentencePiece models by hand. */
const wire = {
  varint(value: number): number[] {
    const out: number[] = [];
    for (; value > 127; value = Math.floor(value / 128)) out.push((value & 127) | 128);
    return [...out, value];
  },
  bytes: (field: number, content: number[]) => [...wire.varint((field << 3) | 2), ...wire.varint(content.length), ...content],
  string: (field: number, text: string) => wire.bytes(field, [...Buffer.from(text)]),
  int: (field: number, value: number) => [...wire.varint(field << 3), ...wire.varint(value)],
  float(field: number, value: number): number[] {
    const bytes = Buffer.alloc(4);
    bytes.writeFloatLE(value);
    return [...wire.varint((field << 3) | 5), ...bytes];
  },
};

/** A SentencePiece ModelProto: DeBERTa's four control/unknown pieces, then `pieces`; trainer and normalizer specs
 * with only the fields given (the rest take sentencepiece_model.proto's defaults). */
function handMadeModel(pieces: [string, number][], trainer: number[] = [...wire.int(40, 3)], normalizer: number[] = []): Buffer {
  const special: [string, number, number][] = [['[PAD]', 0, 3], ['[CLS]', 0, 3], ['[SEP]', 0, 3], ['[UNK]', 0, 2]];
  const all: [string, number, number][] = [...special, ...pieces.map(([piece, score]) => [piece, score, 1] as [string, number, number])];
  return Buffer.from([
    ...all.flatMap(([piece, score, type]) => wire.bytes(1, [...wire.string(1, piece), ...wire.float(2, score), ...wire.int(3, type)])),
    ...wire.bytes(2, trainer),
    ...wire.bytes(3, normalizer),
  ]);
}

describe('writeVleTokenizerFiles', () => {
  it("should write the exporter's tokenizer.json byte for byte from a 128,000-piece spm.model", async () => {
    const folder = await checkpoint({
      'spm.model': spm,
      'added_tokens.json': JSON.stringify({ '[MASK]': 128000 }),
      'tokenizer_config.json': JSON.stringify({ do_lower_case: false, model_max_length: 512 }),
    });
    const out = outFolder();
    const written = await writeVleTokenizerFiles(folder, out);
    expect(written).toEqual(['tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.json']);
    expect((await readdir(out)).sort()).toEqual([...written].sort());
    expect(await sha256(path.join(out, 'tokenizer.json'))).toBe(EXPORTER_SHA256.vleTokenizerJson);
    expect(await sha256(path.join(out, 'tokenizer_config.json'))).toBe(EXPORTER_SHA256.vleTokenizerConfig);
  });

  it('should give a folder the runtime tokenizer loads with DeBERTa-v3 special ids', async () => {
    const out = outFolder();
    await writeVleTokenizerFiles(await checkpoint({ 'spm.model': spm }), out);
    const tokenizer = await loadTokenizer(out);
    expect(tokenizer.vocabSize).toBe(128_000);
    expect([tokenizer.tokenToId('[PAD]'), tokenizer.tokenToId('[CLS]'), tokenizer.tokenToId('[SEP]'), tokenizer.tokenToId('[UNK]')]).toEqual([0, 1, 2, 3]);
    expect(tokenizer.tokenToId('[MASK]')).toBe(128_000);
    const ids = tokenizer.encode('What color is the cat?');
    expect(ids[0]).toBe(1);
    expect(ids.at(-1)).toBe(2);
    expect(tokenizer.decode(ids, { skipSpecialTokens: true })).toBe('What color is the cat?');
  });

  it("should lowercase first when the checkpoint's tokenizer_config.json says do_lower_case", async () => {
    const out = outFolder();
    await writeVleTokenizerFiles(await checkpoint({ 'spm.model': spm, 'tokenizer_config.json': JSON.stringify({ do_lower_case: true }) }), out);
    const json = JSON.parse(await readFile(path.join(out, 'tokenizer.json'), 'utf8'));
    expect(json.normalizer.normalizers.map((step: { type: string }) => step.type)).toEqual(['Lowercase', 'Precompiled', 'Replace', 'Replace', 'Replace', 'Replace']);
    const config = JSON.parse(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8'));
    expect(config.do_lower_case).toBe(true);
    const tokenizer = await loadTokenizer(out);
    expect(tokenizer.encode('WHAT COLOR IS THE CAT?')).toEqual(tokenizer.encode('what color is the cat?'));
  });

  it('should write the model_max_length it is given', async () => {
    const out = outFolder();
    await writeVleTokenizerFiles(await checkpoint({ 'spm.model': spm }), out, { modelMaxLength: 1024 });
    expect(JSON.parse(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8')).model_max_length).toBe(1024);
  });

  it('should prefer spm.model over a tokenizer.json beside it', async () => {
    const out = outFolder();
    const foreign = { version: '1.0', model: { type: 'WordPiece', vocab: { a: 0 } } };
    await writeVleTokenizerFiles(await checkpoint({ 'spm.model': spm, 'tokenizer.json': JSON.stringify(foreign) }), out);
    const json = JSON.parse(await readFile(path.join(out, 'tokenizer.json'), 'utf8'));
    expect(json.model.type).toBe('Unigram');
    expect(json.model.vocab).toHaveLength(128_000);
  });

  it('should use a tokenizer.json as it is when the checkpoint has no spm.model, re-written as json.load + write_json', async () => {
    const out = outFolder();
    const own = '{"version":"1.0","truncation":null,"model":{"type":"Unigram","unk_id":0,"vocab":[["[UNK]",0.0],["b",-1.5E-5]],"ids":{"b":0,"1":1,"0":2}}}';
    await writeVleTokenizerFiles(await checkpoint({ 'tokenizer.json': own }), out);
    const written = await readFile(path.join(out, 'tokenizer.json'), 'utf8');
    expect(JSON.parse(written)).toEqual(JSON.parse(own));
    // Python keeps 0.0 a float, the key order of "ids", and writes -1.5E-5 as repr does.
    expect(written).toContain('"[UNK]",\n        0.0\n');
    expect(written).toContain('-1.5e-05');
    expect(written.indexOf('"b": 0')).toBeLessThan(written.indexOf('"1": 1'));
  });

  it('should refuse a checkpoint with neither spm.model nor tokenizer.json, naming the file', async () => {
    const folder = await checkpoint({ 'tokenizer_config.json': '{}' });
    const out = outFolder();
    const error = await conversionError(writeVleTokenizerFiles(folder, out));
    expect(error.reason).toBe('missing_file');
    expect(error.file).toBe(path.join(folder, 'spm.model'));
    expect(error.message).toContain('neither spm.model nor tokenizer.json');
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ['cut inside a piece', (bytes: Buffer) => bytes.subarray(0, 1000), /runs past the end/],
    ['cut by one byte', (bytes: Buffer) => bytes.subarray(0, bytes.length - 1), /runs past the end/],
    ['cut between two pieces', (bytes: Buffer) => bytes.subarray(0, firstFieldsLength(bytes, 500)), /no trainer_spec, normalizer_spec/],
    ['empty', () => Buffer.alloc(0), /no pieces, trainer_spec, normalizer_spec/],
    ['a JSON file', () => Buffer.from('{"model": {"type": "Unigram"}}'), /wire type|runs past|not a valid/],
    ['a PNG header', () => Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), /wire type|runs past|not a valid|no /],
    ['text', () => Buffer.from('This is not a SentencePiece model.\n'), /wire type|runs past|not a valid|no /],
  ])('should refuse an spm.model that is %s with bad_tokenizer naming the file', async (_name, damage, why) => {
    const folder = await checkpoint({ 'spm.model': damage(spm) });
    const out = outFolder();
    const error = await conversionError(writeVleTokenizerFiles(folder, out));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.file).toBe(path.join(folder, 'spm.model'));
    expect(error.message).toMatch(/not a complete SentencePiece model/);
    expect(error.message).toMatch(why);
    expect(existsSync(out)).toBe(false);
  });

  it("should read a hand-made model with sentencepiece_model.proto's defaults and tokenize with it", async () => {
    const pieces: [string, number][] = [['\u2581what', -1], ['\u2581is', -1], ['\u2581it', -1], ['?', -2], ['\u2581', -3], ['w', -5], ['h', -5]];
    const out = outFolder();
    await writeVleTokenizerFiles(await checkpoint({ 'spm.model': handMadeModel(pieces) }), out);
    const json = JSON.parse(await readFile(path.join(out, 'tokenizer.json'), 'utf8'));
    // No charsmap, but the whitespace rules and the dummy prefix (defaults true), no byte fallback (default false).
    expect(json.normalizer.normalizers.map((step: { type: string }) => step.type)).toEqual(['Replace', 'Replace', 'Replace', 'Replace']);
    expect(json.pre_tokenizer.pretokenizers[0].type).toBe('Metaspace');
    expect(json.model).toMatchObject({ type: 'Unigram', unk_id: 3, byte_fallback: false });
    expect(json.added_tokens.map((token: { id: number; content: string }) => [token.content, token.id])).toEqual([
      ['[PAD]', 0], ['[CLS]', 1], ['[SEP]', 2], ['[UNK]', 3], ['[MASK]', 11],
    ]);
    const tokenizer = await loadTokenizer(out);
    expect(tokenizer.encode('what  is it?')).toEqual([1, 4, 5, 6, 7, 2]);
    expect(tokenizer.encode('whY')).toEqual([1, 8, 9, 10, 3, 2]);
  });

  it('should refuse a piece whose score is not a number', async () => {
    const error = await conversionError(writeVleTokenizerFiles(await checkpoint({ 'spm.model': handMadeModel([['a', Number.NaN]]) }), outFolder()));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.key).toBe('a');
  });

  it('should refuse an unknown-piece id outside the pieces', async () => {
    const error = await conversionError(writeVleTokenizerFiles(await checkpoint({ 'spm.model': handMadeModel([['a', -1]], wire.int(40, 99)) }), outFolder()));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.message).toContain('unknown piece id 99, outside its 5 pieces');
  });

  it('should read a negative int32 (ten bytes on the wire) as negative', async () => {
    const minusOne = [...wire.varint(40 << 3), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    const error = await conversionError(writeVleTokenizerFiles(await checkpoint({ 'spm.model': handMadeModel([['a', -1]], minusOne) }), outFolder()));
    expect(error.message).toContain('unknown piece id -1, outside its 5 pieces');
  });

  it('should refuse a modelMaxLength that is not a positive integer', async () => {
    const error = await writeVleTokenizerFiles(await checkpoint({ 'spm.model': spm }), outFolder(), { modelMaxLength: 0 }).catch((caught: unknown) => caught);
    expect(InvalidOptionError.isInstance(error)).toBe(true);
  });

  it('should refuse a string field that is not UTF-8', () => {
    // One piece (field 1) whose piece string (field 1) is the lone byte 0xff.
    const bytes = Uint8Array.from([0x0a, 0x03, 0x0a, 0x01, 0xff]);
    expect(() => readSentencePieceModel(bytes, { file: 'spm.model' })).toThrow(/not valid UTF-8/);
  });

  it.each(['[PAD]', '[CLS]', '[SEP]', '[UNK]'])('should refuse an spm.model without the %s piece, naming it', async (token) => {
    const folder = await checkpoint({ 'spm.model': replaceBytes(spm, token, '[ZZZ]'.slice(0, token.length)) });
    const error = await conversionError(writeVleTokenizerFiles(folder, outFolder()));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.key).toBe(token);
    expect(error.message).toContain(`has no ${token} piece: not a DeBERTa-v3 SentencePiece model`);
  });

  it('should refuse an added_tokens.json that gives [MASK] another id than the conversion', async () => {
    const folder = await checkpoint({ 'spm.model': spm, 'added_tokens.json': JSON.stringify({ '[MASK]': 128001 }) });
    const error = await conversionError(writeVleTokenizerFiles(folder, outFolder()));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.key).toBe('[MASK]');
    expect(error.file).toBe(path.join(folder, 'added_tokens.json'));
    expect(error.message).toContain('gives [MASK] id 128001, the conversion of');
  });

  it('should refuse a tokenizer_config.json that is not a JSON object', async () => {
    const folder = await checkpoint({ 'spm.model': spm, 'tokenizer_config.json': '[1, 2' });
    const error = await conversionError(writeVleTokenizerFiles(folder, outFolder()));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.file).toBe(path.join(folder, 'tokenizer_config.json'));
  });
});

describe('writeBlipTokenizerFiles', () => {
  it("should build the exporter's tokenizer.json byte for byte from a checkpoint with only vocab.txt", async () => {
    const out = outFolder();
    const written = await writeBlipTokenizerFiles(await checkpoint({ 'vocab.txt': vocab }), out);
    expect(written).toEqual(['vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']);
    expect(await sha256(path.join(out, 'tokenizer.json'))).toBe(EXPORTER_SHA256.blipVocabOnlyTokenizerJson);
    expect(await sha256(path.join(out, 'tokenizer_config.json'))).toBe(EXPORTER_SHA256.blipVocabOnlyTokenizerConfig);
    expect(await readFile(path.join(out, 'vocab.txt'), 'utf8')).toBe(vocab);
    const tokenizer = await loadTokenizer(out);
    expect(tokenizer.vocabSize).toBe(30_522);
    expect(tokenizer.encode('What color is the cat?').slice(0, 1)).toEqual([101]);
  });

  it("should keep the checkpoint's own tokenizer_config.json when it builds tokenizer.json", async () => {
    const own = '{"do_lower_case": true, "model_max_length": 77}';
    const out = outFolder();
    const written = await writeBlipTokenizerFiles(await checkpoint({ 'vocab.txt': vocab, 'tokenizer_config.json': own }), out);
    expect(written).toEqual(['tokenizer_config.json', 'vocab.txt', 'tokenizer.json', 'special_tokens_map.json']);
    expect(await readFile(path.join(out, 'tokenizer_config.json'), 'utf8')).toBe(own);
  });

  it("should copy a checkpoint's tokenizer files as they are", async () => {
    const files = { 'tokenizer.json': '{"version": "1.0"}', 'special_tokens_map.json': '{}', 'vocab.txt': 'x\n', 'config.json': '{}' };
    const out = outFolder();
    const written = await writeBlipTokenizerFiles(await checkpoint(files), out);
    expect(written).toEqual(['tokenizer.json', 'special_tokens_map.json', 'vocab.txt']);
    for (const name of written) expect(await readFile(path.join(out, name), 'utf8')).toBe(files[name as keyof typeof files]);
  });

  it('should refuse a checkpoint with neither tokenizer.json nor vocab.txt', async () => {
    const folder = await checkpoint({ 'tokenizer_config.json': '{}' });
    const error = await conversionError(writeBlipTokenizerFiles(folder, outFolder()));
    expect(error.reason).toBe('missing_file');
    expect(error.file).toBe(path.join(folder, 'vocab.txt'));
    expect(error.message).toContain('neither tokenizer.json nor vocab.txt');
  });

  it.each([
    ['lacks [MASK]', (text: string) => text.replace('[MASK]\n', ''), '[MASK]', /lacks the BERT special token \[MASK\]/],
    ['lists a token twice', (text: string) => `${text}the\n`, 'the', /lists the token "the" twice/],
  ])('should refuse a vocab.txt that %s, naming the token, and write nothing', async (_name, edit, key, message) => {
    const out = outFolder();
    const error = await conversionError(writeBlipTokenizerFiles(await checkpoint({ 'vocab.txt': edit(vocab), 'tokenizer_config.json': '{}' }), out));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.key).toBe(key);
    expect(error.message).toMatch(message);
    expect(existsSync(out)).toBe(false);
  });

  it('should refuse a vocab.txt that is not UTF-8', async () => {
    const error = await conversionError(writeBlipTokenizerFiles(await checkpoint({ 'vocab.txt': Buffer.from([0x5b, 0xff, 0x0a]) }), outFolder()));
    expect(error.reason).toBe('bad_tokenizer');
    expect(error.message).toContain('is not UTF-8 text');
  });
});

describe('the tokenizer conversion without Python', () => {
  it('should convert VLE and BLIP tokenizers in a process whose PATH has no python3 (or anything else)', async () => {
    const vle = await checkpoint({ 'spm.model': spm });
    const blip = await checkpoint({ 'vocab.txt': vocab });
    const [vleOut, blipOut] = [outFolder(), outFolder()];
    const module = pathToFileURL(path.join(root, 'dist', 'src', 'convert', 'tokenizer', 'index.js')).href;
    const script = [
      `const { writeVleTokenizerFiles, writeBlipTokenizerFiles } = await import(${JSON.stringify(module)});`,
      `const vle = await writeVleTokenizerFiles(${JSON.stringify(vle)}, ${JSON.stringify(vleOut)});`,
      `const blip = await writeBlipTokenizerFiles(${JSON.stringify(blip)}, ${JSON.stringify(blipOut)});`,
      'console.log(JSON.stringify({ vle, blip }));',
    ].join('\n');
    const emptyPath = await mkdtemp(path.join(scratch, 'empty-path-'));
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { env: { PATH: emptyPath } });
    expect(JSON.parse(stdout)).toEqual({
      vle: ['tokenizer_config.json', 'special_tokens_map.json', 'tokenizer.json'],
      blip: ['vocab.txt', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'],
    });
    expect(await sha256(path.join(blipOut, 'tokenizer.json'))).toBe(EXPORTER_SHA256.blipVocabOnlyTokenizerJson);
  });
});

describe('formatPythonJson', () => {
  it("should write floats as Python's repr does", () => {
    // [value, repr(value)] from CPython 3.11.
    const table: [number, string][] = [
      [0, '0.0'], [-0, '-0.0'], [1, '1.0'], [-18.97629737854004, '-18.97629737854004'], [0.0001, '0.0001'],
      [0.00001, '1e-05'], [1e-7, '1e-07'], [1.5e-7, '1.5e-07'], [123456789012345.6, '123456789012345.6'],
      [1e15, '1000000000000000.0'], [1e16, '1e+16'], [1.2345e16, '1.2345e+16'], [2.5, '2.5'], [-3, '-3.0'],
      [5e-324, '5e-324'], [1.7976931348623157e308, '1.7976931348623157e+308'], [Math.fround(-10.123), '-10.123000144958496'],
      [0.1, '0.1'], [100, '100.0'], [1e22, '1e+22'], [12345678.9, '12345678.9'],
    ];
    expect(table.map(([value]) => formatFloat(value))).toEqual(table.map(([, repr]) => repr));
  });

  it("should keep a Map's insertion order for integer-like keys and indent as json.dump(indent=2)", () => {
    const value = { vocab: new Map([['b', 0], ['1', 1], ['0', 2]]), scores: [['a', new PythonFloat(0)]], empty: [], none: {}, text: 'é"\n' };
    expect(formatPythonJson(value)).toBe(
      '{\n  "vocab": {\n    "b": 0,\n    "1": 1,\n    "0": 2\n  },\n  "scores": [\n    [\n      "a",\n      0.0\n    ]\n  ],\n  "empty": [],\n  "none": {},\n  "text": "é\\"\\n"\n}\n',
    );
  });
});
