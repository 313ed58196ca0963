// The tokenizer conversion in Node (src/convert/tokenizer) against the Python exporter and transformers' slow
// tokenizers, on the outputs of the `tokenizers` upstream part (models/vqa_llm_upstream/tokenizers.py): every folder
// the exporter wrote there is written again here from the same checkpoint folder, must have the same files byte for
// byte, and, loaded by the runtime tokenizer, must give transformers' ids for every question — VLE from a
// 128,000-piece spm.model (and seven SentencePiece settings beside DeBERTa-v3's), BLIP from a hub-style folder and
// from vocab.txt alone.
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeBlipTokenizerFiles, writeVleTokenizerFiles } from '../../dist/src/convert/tokenizer/index.js';
import { loadTokenizer } from '../../dist/src/models/tokenizer.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from '../upstream/upstream-output.js';

interface TokenizerCase {
  question: string;
  text: string;
  vle: number[];
  vleTruncated: number[];
  blip: number[];
  /** Diagnosis only: the exporter's tokenizer.json under the Python tokenizers library. */
  vleTokenizerJson: number[];
  blipTokenizerJson: number[];
  blipVocabOnlyTokenizerJson: number[];
}

interface TokenizerCases {
  maxQuestionTokens: number;
  vleVocabSize: number;
  cases: TokenizerCase[];
}

interface Variant {
  settings: Record<string, unknown>;
  vocabSize: number;
  /** transformers' slow DebertaV2Tokenizer rules over the variant's spm.model, `[CLS] … [SEP]`, per question. */
  ids: number[][];
  /** Diagnosis only: the exporter's tokenizer.json under the Python tokenizers library. */
  tokenizerJsonIds: number[][];
}

/** The checkpoint folders of the part, the exporter's folder for each, and which converter applies. */
const FOLDERS: { name: string; checkpoint: string; exporter: string; family: 'vle' | 'blip' }[] = [
  { name: 'VLE, spm.model', checkpoint: 'vle-checkpoint', exporter: 'vle', family: 'vle' },
  { name: 'VLE, tokenizer.json only', checkpoint: 'vle-tokenizer-json-checkpoint', exporter: 'vle-tokenizer-json', family: 'vle' },
  { name: 'BLIP, hub tokenizer files', checkpoint: 'blip-checkpoint', exporter: 'blip', family: 'blip' },
  { name: 'BLIP, vocab.txt only', checkpoint: 'blip-vocab-only-checkpoint', exporter: 'blip-vocab-only', family: 'blip' },
];

const same = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((id, index) => id === b[index]);

/** The first few questions whose ids differ, for the failure message. */
function differences(cases: TokenizerCase[], expected: (index: number) => number[], encode: (text: string) => number[], diagnosis?: (index: number) => number[]) {
  const failed: string[] = [];
  cases.forEach((entry, index) => {
    const runtime = encode(entry.text);
    if (!same(runtime, expected(index))) {
      const note = diagnosis ? `\n  Python tokenizers: ${JSON.stringify(diagnosis(index))}` : '';
      failed.push(`#${index} ${JSON.stringify(entry.question)}\n  runtime:   ${JSON.stringify(runtime)}\n  reference: ${JSON.stringify(expected(index))}${note}`);
    }
  });
  return { count: failed.length, message: `${failed.length} of ${cases.length} questions differ\n${failed.slice(0, 6).join('\n')}` };
}

describeUpstream('tokenizers', 'tokenizer conversion in Node against the Python exporter and transformers', () => {
  let scratch: string;
  let fixtures: TokenizerCases;
  let cases: TokenizerCase[];
  let variants: Record<string, Variant>;
  /** Where the converted folder of each FOLDERS entry / variant is. */
  const converted = (name: string) => path.join(scratch, name);

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'vqa-llm-tokenizer-upstream-'));
    fixtures = readUpstreamJson<TokenizerCases>('tokenizers', 'cases.json');
    cases = fixtures.cases;
    variants = readUpstreamJson<Record<string, Variant>>('tokenizers', 'variants.json');
    for (const folder of FOLDERS) {
      const write = folder.family === 'vle' ? writeVleTokenizerFiles : writeBlipTokenizerFiles;
      await write(upstreamPath('tokenizers', folder.checkpoint), converted(folder.exporter));
    }
    for (const name of Object.keys(variants)) {
      await writeVleTokenizerFiles(upstreamPath('tokenizers', 'variants', name, 'checkpoint'), converted(`variant-${name}`));
    }
  });
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('should have at least 2,000 distinct questions of every kind the issue names', () => {
    expect(cases.length).toBeGreaterThanOrEqual(2000);
    expect(new Set(cases.map((entry) => entry.question)).size).toBe(cases.length);
    const kinds: Record<string, RegExp | ((entry: TokenizerCase) => boolean)> = {
      'VQA-style': /^(What|How many|Is|Are|Where|Who|Which|Why) .+\?$/,
      punctuation: /[?!.]{2,}|[«»“”„]/u,
      digits: /\d/,
      accents: /[àáâãäçèéêëíïñóôöúüßø]|\p{M}/u,
      CJK: /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u,
      emoji: /\p{Extended_Pictographic}/u,
      'repeated spaces': /\S {2,}\S/,
      'very long (over 200 VLE tokens)': (entry) => entry.vle.length > 200,
    };
    const counts = Object.fromEntries(
      Object.entries(kinds).map(([kind, test]) => [kind, cases.filter((entry) => (typeof test === 'function' ? test(entry) : test.test(entry.question))).length]),
    );
    console.info('questions per kind:', counts);
    for (const [kind, count] of Object.entries(counts)) expect(count, kind).toBeGreaterThanOrEqual(20);
  });

  it.each(FOLDERS.map((folder) => [folder.name, folder] as const))("should write the exporter's files byte for byte (%s)", async (_name, folder) => {
    const exporter = upstreamPath('tokenizers', folder.exporter);
    const names = (await readdir(exporter)).sort();
    expect((await readdir(converted(folder.exporter))).sort()).toEqual(names);
    for (const name of names) {
      const [ours, theirs] = await Promise.all([readFile(path.join(converted(folder.exporter), name)), readFile(path.join(exporter, name))]);
      expect(ours.equals(theirs), `${folder.exporter}/${name} differs from the exporter's`).toBe(true);
    }
  });

  it("should write the exporter's files byte for byte for every SentencePiece variant", async () => {
    const names = Object.keys(variants);
    expect(names.length).toBeGreaterThanOrEqual(7);
    for (const name of names) {
      const exporter = upstreamPath('tokenizers', 'variants', name, 'folder');
      const files = (await readdir(exporter)).sort();
      expect((await readdir(converted(`variant-${name}`))).sort()).toEqual(files);
      for (const file of files) {
        const [ours, theirs] = await Promise.all([readFile(path.join(converted(`variant-${name}`), file)), readFile(path.join(exporter, file))]);
        expect(ours.equals(theirs), `variant ${name}: ${file} differs from the exporter's`).toBe(true);
      }
    }
  });

  describe('ids of the converted folders under the runtime tokenizer', () => {
    it("should give DebertaV2Tokenizer's ids for every question, whole and truncated (VLE from spm.model)", async () => {
      const tokenizer = await loadTokenizer(converted('vle'));
      expect(tokenizer.vocabSize).toBe(fixtures.vleVocabSize);
      const whole = differences(cases, (index) => cases[index]!.vle, (text) => tokenizer.encode(text), (index) => cases[index]!.vleTokenizerJson);
      expect(whole.count, whole.message).toBe(0);
      const maxLength = fixtures.maxQuestionTokens;
      const truncated = differences(cases, (index) => cases[index]!.vleTruncated, (text) => tokenizer.encode(text, { maxLength }));
      expect(truncated.count, truncated.message).toBe(0);
    });

    it.each([
      ['blip', 'blipTokenizerJson'],
      ['blip-vocab-only', 'blipVocabOnlyTokenizerJson'],
    ] as const)("should give BertTokenizer's ids for every question (%s)", async (folder, diagnosis) => {
      const tokenizer = await loadTokenizer(converted(folder));
      expect(tokenizer.vocabSize).toBe(30_522);
      const result = differences(cases, (index) => cases[index]!.blip, (text) => tokenizer.encode(text), (index) => cases[index]![diagnosis]);
      expect(result.count, result.message).toBe(0);
    });

    it("should give DebertaV2Tokenizer's ids for every question under every SentencePiece variant", async () => {
      const failures: string[] = [];
      for (const [name, variant] of Object.entries(variants)) {
        const tokenizer = await loadTokenizer(converted(`variant-${name}`));
        const result = differences(cases, (index) => variant.ids[index]!, (text) => tokenizer.encode(text), (index) => variant.tokenizerJsonIds[index]!);
        console.info(`variant ${name} (${JSON.stringify(variant.settings)}): ${cases.length - result.count} of ${cases.length} questions match`);
        if (result.count > 0) failures.push(`variant ${name}: ${result.message}`);
      }
      expect(failures, failures.join('\n\n')).toEqual([]);
    });
  });
});
