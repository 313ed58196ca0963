// The project's tokenizers against transformers' slow ones (models/vqa_llm_upstream/tokenizers.py): thousands of
// seeded questions (VQA templates and edge cases: scripts, NFD, compatibility characters, emoji, whitespace,
// invisible characters, special-token literals, very long questions), tokenized the way the runtime does it —
// VleVqa.tokenize encodes question.trim() with [CLS] … [SEP] (truncateQuestion: to max_question_tokens, [SEP] kept);
// BlipCaptioner.promptIds encodes prefix.trim() with [CLS] … [SEP] — through the tokenizer folders the exporter
// writes: VLE's tokenizer.json converted from a 128,000-piece DeBERTa-v3-style spm.model, BLIP's copied from a
// hub-style BertTokenizerFast folder (30,522 tokens).
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer, type Tokenizer } from '../../dist/src/models/tokenizer.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from './upstream-output.js';

interface TokenizerCase {
  question: string;
  /** What the runtime tokenizes: question.trim(). */
  text: string;
  /** transformers' slow DebertaV2Tokenizer (SentencePiece), [CLS] … [SEP]. */
  vle: number[];
  /** The same, truncated to maxQuestionTokens with the [SEP] kept. */
  vleTruncated: number[];
  /** transformers' slow BertTokenizer, [CLS] … [SEP]. */
  blip: number[];
  /** For diagnosis: the model folder's tokenizer.json under the Python tokenizers library. */
  vleTokenizerJson: number[];
  blipTokenizerJson: number[];
}

interface TokenizerCases {
  seed: number;
  maxQuestionTokens: number;
  vleVocabSize: number;
  blipVocabSize: number;
  cases: TokenizerCase[];
}

type Expected = 'vle' | 'vleTruncated' | 'blip';

/** Every case whose runtime ids differ from the reference, described for the failure message (the first few). */
function mismatches(cases: TokenizerCase[], expected: Expected, diagnosis: keyof TokenizerCase, encode: (text: string) => number[]) {
  const failed: { index: number; question: string; runtime: number[]; reference: number[]; tokenizerJson: unknown }[] = [];
  cases.forEach((entry, index) => {
    const runtime = encode(entry.text);
    const reference = entry[expected];
    if (runtime.length !== reference.length || runtime.some((id, position) => id !== reference[position])) {
      failed.push({ index, question: entry.question, runtime, reference, tokenizerJson: entry[diagnosis] });
    }
  });
  return failed;
}

/** The question with every code point outside printable ASCII written as \u{…}, so invisible ones show. */
const escape = (text: string): string =>
  [...text].map((char) => (/^[\x20-\x7e]$/.test(char) ? char : `\\u{${char.codePointAt(0)!.toString(16)}}`)).join('');

function report(name: string, total: number, failed: ReturnType<typeof mismatches>, shown = 8): string {
  const lines = failed.slice(0, shown).map(
    (entry) =>
      `#${entry.index} "${escape(entry.question)}"\n  runtime:   ${JSON.stringify(entry.runtime)}\n  reference: ${JSON.stringify(entry.reference)}\n  the same tokenizer.json under Python tokenizers: ${JSON.stringify(entry.tokenizerJson)}`,
  );
  return `${name}: ${failed.length} of ${total} questions differ from transformers' slow tokenizer\n${lines.join('\n')}`;
}

describeUpstream('tokenizers', "tokenizers against transformers' slow tokenizers", () => {
  let fixtures: TokenizerCases;
  let cases: TokenizerCase[];
  beforeAll(() => {
    fixtures = readUpstreamJson<TokenizerCases>('tokenizers', 'cases.json');
    cases = fixtures.cases;
  });

  it('should have at least 2,000 distinct questions, each the text the runtime would tokenize', () => {
    expect(cases.length).toBeGreaterThanOrEqual(2000);
    expect(new Set(cases.map((entry) => entry.question)).size).toBe(cases.length);
    // The Python side trimmed with ECMAScript's whitespace set; String.prototype.trim must agree.
    expect(cases.filter((entry) => entry.question.trim() !== entry.text).map((entry) => entry.question)).toEqual([]);
    expect(cases.some((entry) => entry.vle.length > 200)).toBe(true);
  });

  describe('VLE (tokenizer.json the exporter converts from spm.model)', () => {
    let tokenizer: Tokenizer;
    const load = async () => (tokenizer ??= await loadTokenizer(upstreamPath('tokenizers', 'vle')));

    it('should load a realistic-size SentencePiece vocabulary', async () => {
      await load();
      expect(tokenizer.vocabSize).toBe(fixtures.vleVocabSize);
      expect(tokenizer.vocabSize).toBeGreaterThanOrEqual(100_000);
      expect(tokenizer.tokenToId('[CLS]')).toBe(1);
      expect(tokenizer.tokenToId('[SEP]')).toBe(2);
      expect(tokenizer.tokenToId('[MASK]')).toBe(fixtures.vleVocabSize);
    });

    it("should give DebertaV2Tokenizer's ids for every question", async () => {
      await load();
      const failed = mismatches(cases, 'vle', 'vleTokenizerJson', (text) => tokenizer.encode(text, { addSpecialTokens: true }));
      console.info(`VLE: ${cases.length - failed.length} of ${cases.length} questions match`);
      expect(failed.length, report('VLE', cases.length, failed)).toBe(0);
    });

    it("should give DebertaV2Tokenizer's truncated ids for every question, [SEP] kept", async () => {
      await load();
      const maxLength = fixtures.maxQuestionTokens;
      const failed = mismatches(cases, 'vleTruncated', 'vleTokenizerJson', (text) => tokenizer.encode(text, { addSpecialTokens: true, maxLength }));
      console.info(`VLE truncated to ${maxLength}: ${cases.length - failed.length} of ${cases.length} questions match`);
      expect(failed.length, report(`VLE truncated to ${maxLength}`, cases.length, failed)).toBe(0);
    });
  });

  describe('BLIP (hub tokenizer.json the exporter copies)', () => {
    let tokenizer: Tokenizer;
    const load = async () => (tokenizer ??= await loadTokenizer(upstreamPath('tokenizers', 'blip')));

    it('should load a realistic-size WordPiece vocabulary', async () => {
      await load();
      expect(tokenizer.vocabSize).toBe(fixtures.blipVocabSize);
      expect(tokenizer.vocabSize).toBe(30_522);
      expect(tokenizer.tokenToId('[CLS]')).toBe(101);
      expect(tokenizer.tokenToId('[SEP]')).toBe(102);
    });

    it("should give BertTokenizer's ids for every question (the caption prefix's ids before [CLS] becomes bos)", async () => {
      await load();
      const failed = mismatches(cases, 'blip', 'blipTokenizerJson', (text) => tokenizer.encode(text, { addSpecialTokens: true }));
      console.info(`BLIP: ${cases.length - failed.length} of ${cases.length} questions match`);
      expect(failed.length, report('BLIP', cases.length, failed)).toBe(0);
    });
  });
});
