// SentencePiece's own rules, which transformers.js does not follow, as vqa-llm re-implements them
// (src/models/sentencepiece/): the precompiled charsmap lookup, the unigram segmentation (float32 ties, pieces that
// never match text, byte fallback), and the hooks that put them into a transformers.js tokenizer. Every expected
// value below was produced by SentencePiece itself (Python sentencepiece 0.2.3) for the same model.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ModelIntegrityError } from '../../dist/src/errors/model-integrity-error.js';
import { loadTokenizer } from '../../dist/src/models/tokenizer.js';
import { createCharsmapNormalizer } from '../../dist/src/models/sentencepiece/precompiled-charsmap.js';
import { installTokenizerHooks } from '../../dist/src/models/sentencepiece/transformers-js.js';
import { SentencePieceUnigram } from '../../dist/src/models/sentencepiece/unigram.js';

/**
 * A tiny precompiled charsmap: `spm_train --normalization_rule_tsv` over these rules (source -> target), the
 * resulting model's normalizer_spec.precompiled_charsmap in base64:
 *   U+FB01 -> "fi", U+FF1F -> "?", U+3000 -> " ", U+00A0 -> " ", U+200B -> "", "e" U+0301 -> U+00E9,
 *   U+1D401 -> "B", U+FF76 -> U+30AB, U+FF76 U+FF9E -> U+30AC.
 */
const TINY_CHARSMAP =
  'AAQAAACQAQBlPAMAzAACAIEdAAAKAACAoA0AAAEAAICAEAIAiwUAAAAAAICABAIAgDUAAKwAAgCBDQAABwAAgJ99AAADAACAtg0A' +
  'AA0AAIC+bAIAEQAAgIEJAACeCQAABQAAgJ1EAgCQNAIAGwAAABoAAAC8MAIAvegCAB8AAAAeAAAAIQAAACAAAAAjAAAAIgAAACUA' +
  'AAAkAAAAJwAAACYAAAApAAAAKAAAACsAAAAqAAAALQAAACwAAAAvAAAALgAAADEAAAAwAAAAMwAAADIAAAA1AAAANAAAADcAAAA2' +
  'AAAAOQAAADgAAAA7AAAAOgAAAD0AAAA8AAAAPwAAAD4AAABBAAAAQAAAAEMAAABCAAAARQAAAEQAAABHAAAARgAAAEkAAABIAAAA' +
  'SwAAAEoAAABNAAAATAAAAE8AAABOAAAAUQAAAFAAAABTAAAAUgAAAFUAAABUAAAAVwAAAFYAAABZAAAAWAAAAFsAAABaAAAAXQAA' +
  'AFwAAABfAAAAXgAAAGEAAABgAAAAYwAAAGIAAABlAAAAZAAAAGcAAABmAAAAaQAAAGgAAABrAAAAagAAAG0AAABsAAAAbwAAAG4A' +
  'AABxAAAAcAAAAHMAAAByAAAAdQAAAHQAAAB3AAAAdgAAAHkAAAB4AAAAewAAAHoAAAB9AAAAfAAAAH8AAAB+AAAAgQAAAIAAAACD' +
  'AAAAggAAAIUAAACEAAAA4gQAAOM0AACJAAAAiAAAAIsAAADvrAAAjQAAAIwAAACPAAAAjgAAAJEAAACQAAAAkwAAAJIAAADwRAAA' +
  'lAAAAJcAAACWAAAAmQAAAJgAAACbAAAAmgAAAJ0AAACcAAAAnwAAAJ4AAAChAAAAoAAAAKMAAACiAAAApQAAAKQAAADCDAAApgAA' +
  'AKkAAACoAAAAqwAAAKoAAACtAAAArAAAAK8AAACuAAAAsQAAALAAAACzAAAAsgAAALUAAAC0AAAAtwAAALYAAAC5AAAAuAAAALsA' +
  'AAC6AAAAvQAAALwAAAC/AAAAvgAAAMEAAADAAAAAwwAAAMIAAADFAAAAxAAAAMcAAADGAAAAyQAAAMgAAADLAAAAygAAAM0AAADM' +
  'AAAAzwAAAM4AAADRAAAA0AAAANMAAADSAAAA1QAAANQAAADXAAAA1gAAANkAAADYAAAA2wAAANoAAADdAAAA3AAAAN8AAADeAAAA' +
  '4QAAAOAAAADjAAAA4gAAAOUAAADkAAAA5wAAAOYAAADpAAAA6AAAAOsAAADqAAAA7QAAAOwAAADvAAAA7gAAAPEAAADwAAAA8wAA' +
  'APIAAAD1AAAA9AAAAPcAAAD2AAAA+QAAAPgAAAD7AAAA+gAAAP0AAADvQAEA/wAAAP4AAAAAIAA/AEIAZmkAw6kA44KrAOOCrAA=';

describe('createCharsmapNormalizer', () => {
  const normalize = createCharsmapNormalizer(TINY_CHARSMAP);

  it.each([
    ['\ufb01sh\uff1f', 'fish?'],
    ['x\u3000y\u00a0z', 'x y z'],
    ['a\u200bb', 'ab'],
    ['cafe\u0301', 'caf\u00e9'],
    // The rule for e + U+0301 applies once; the second combining mark has no rule and is copied.
    ['e\u0301\u0301', '\u00e9\u0301'],
    ['\u{1d401}ig', 'Big'],
    // Longest match: ｶﾞ is one rule, not ｶ followed by ﾞ.
    ['\uff76\uff9e\uff76', '\u30ac\u30ab'],
    ['\uff9e', '\uff9e'],
    ['zwj\u200dkept, emoji \u{1f600} and \u00df unchanged', 'zwj\u200dkept, emoji \u{1f600} and \u00df unchanged'],
    ['', ''],
  ])('should normalize %j to %j as SentencePiece does', (text, expected) => {
    expect(normalize(text)).toBe(expected);
  });

  it('should refuse a charsmap that is not one', () => {
    for (const broken of ['', 'AAAA', Buffer.from([0xff, 0xff, 0, 0, 1, 2, 3, 4]).toString('base64')]) {
      let error: unknown;
      try {
        createCharsmapNormalizer(broken);
      } catch (caught) {
        error = caught;
      }
      expect(ModelIntegrityError.isInstance(error), broken).toBe(true);
    }
  });
});

/** A tokenizer.json Unigram model: [PAD] [CLS] [SEP] [UNK], optionally the 256 byte pieces, then `pieces`. */
function unigramModel(pieces: Array<[string, number]>, byteFallback: boolean) {
  const bytes: Array<[string, number]> = byteFallback ? Array.from({ length: 256 }, (_, byte) => [`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`, 0]) : [];
  const vocab: Array<[string, number]> = [['[PAD]', 0], ['[CLS]', 0], ['[SEP]', 0], ['[UNK]', 0], ...bytes, ...pieces];
  return { type: 'Unigram', unk_id: 3, byte_fallback: byteFallback, vocab };
}

describe('SentencePieceUnigram', () => {
  const pieces: Array<[string, number]> = [
    // a·bc and ab·c both score -2 in float32 (ab·c is -2 + 2^-25 in float64): SentencePiece keeps a·bc.
    ['a', -1],
    ['b', -10],
    ['c', -(0.5 - 2 ** -25)],
    ['bc', -1],
    ['ab', -1.5],
    // The same with gh·i better by 2^-23, which float32 does tell apart.
    ['g', -1],
    ['h', -10],
    ['i', -(0.5 - 2 ** -23)],
    ['hi', -1],
    ['gh', -1.5],
    // Every segmentation of a run of x scores the same.
    ['x', -1],
    ['xx', -2],
    ...['<', '0', '4', '1', '>', '[', 'C', 'L', 'S', ']'].map((piece): [string, number] => [piece, -3]),
  ];

  for (const byteFallback of [true, false]) {
    describe(byteFallback ? 'with byte fallback' : 'without byte fallback', () => {
      const unigram = new SentencePieceUnigram(unigramModel(pieces, byteFallback), { controlIds: [0, 1, 2] });

      it('should break float32 ties as SentencePiece does', () => {
        expect(unigram.encode('abc')).toEqual(['a', 'bc']);
        expect(unigram.encode('ghi')).toEqual(['gh', 'i']);
      });

      it('should keep the earliest start among equal paths in a long run', () => {
        expect(unigram.encode('xxxx')).toEqual(['xx', 'xx']);
        expect(unigram.encode('xxxxx')).toEqual(['x', 'xx', 'xx']);
        expect(unigram.encode('xxxxxxx')).toEqual(['x', 'xx', 'xx', 'xx']);
      });

      it('should never match byte pieces or control symbols against the text', () => {
        expect(unigram.encode('<0x41>')).toEqual(['<', '0', 'x', '4', '1', '>']);
        expect(unigram.encode('[CLS]')).toEqual(['[', 'C', 'L', 'S', ']']);
      });
    });
  }

  it('should spell unknown characters as their UTF-8 bytes with byte fallback', () => {
    const unigram = new SentencePieceUnigram(unigramModel(pieces, true), { controlIds: [0, 1, 2] });
    expect(unigram.encode('a\u00e9\u{1f600}b')).toEqual(['a', '<0xC3>', '<0xA9>', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>', 'b']);
  });

  it('should give the unknown piece for each unknown character without byte fallback', () => {
    const unigram = new SentencePieceUnigram(unigramModel(pieces, false), { controlIds: [0, 1, 2] });
    expect(unigram.encode('a\u00e9\u{1f600}b')).toEqual(['a', '[UNK]', '[UNK]', 'b']);
    expect(unigram.encode('')).toEqual([]);
  });
});

const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** A tokenizer.json as the exporter converts an spm.model (vle.spm_tokenizer_json), with TINY_CHARSMAP. */
function sentencePieceTokenizerJson(words: string[]) {
  const model = unigramModel(
    words.map((word, index): [string, number] => [word, -2 - index / 8]),
    true,
  );
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [...['[PAD]', '[CLS]', '[SEP]', '[UNK]'].map((token, id) => special(id, token)), special(model.vocab.length, '[MASK]')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Precompiled', precompiled_charsmap: TINY_CHARSMAP },
        { type: 'Replace', pattern: { Regex: '\\A +| +\\z' }, content: '' },
        { type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' },
        { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' },
        { type: 'Replace', pattern: { Regex: '\\A\u2581' }, content: '\u2581\u2581' },
      ],
    },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: false }] },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': { id: '[CLS]', ids: [1], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [2], tokens: ['[SEP]'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model,
  };
}

describe('loadTokenizer with a tokenizer.json converted from an spm.model', () => {
  const words = ['\u2581fish', '\u2581why', '\u2581big', '?', '\u2581', '\u30ac', '\u30ab', '\u00e9', ...'abcdefghijklmnopqrstuvwxyz<>0123456789[]CLSB'];
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vqa-llm-sentencepiece-'));
    await writeFile(path.join(root, 'tokenizer.json'), JSON.stringify(sentencePieceTokenizerJson(words)));
    await writeFile(path.join(root, 'tokenizer_config.json'), JSON.stringify({ tokenizer_class: 'DebertaV2Tokenizer', cls_token: '[CLS]', sep_token: '[SEP]', unk_token: '[UNK]', pad_token: '[PAD]', mask_token: '[MASK]' }));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  // SentencePiece's pieces for each text, from the same pieces, scores and charsmap.
  it.each([
    ['\ufb01sh\uff1f', ['\u2581fish', '?']],
    ['why\u3000\ufb01sh', ['\u2581why', '\u2581fish']],
    ['  why   fish  ', ['\u2581why', '\u2581fish']],
    ['\u{1d401}ig \uff76\uff9e\uff76', ['\u2581', 'B', 'i', 'g', '\u2581', '\u30ac', '\u30ab']],
    ['cafe\u0301 \u00df', ['\u2581', 'c', 'a', 'f', '\u00e9', '\u2581', '<0xC3>', '<0x9F>']],
    ['<0x41>', ['\u2581', '<', '0', 'x', '4', '1', '>']],
    ['a\u200bb\u200dc', ['\u2581', 'a', 'b', '<0xE2>', '<0x80>', '<0x8D>', 'c']],
  ])('should encode %j as SentencePiece does', async (text, expected) => {
    const tokenizer = await loadTokenizer(root);
    const ids = expected.map((piece) => tokenizer.tokenToId(piece)!);
    expect(tokenizer.encode(text)).toEqual([1, ...ids, 2]);
  });

  it('should decode byte pieces back to the characters', async () => {
    const tokenizer = await loadTokenizer(root);
    expect(tokenizer.decode(tokenizer.encode('cafe\u0301 \u00df'), { skipSpecialTokens: true })).toBe('caf\u00e9 \u00df');
  });
});

describe('installTokenizerHooks', () => {
  const json = { normalizer: { type: 'Precompiled', precompiled_charsmap: TINY_CHARSMAP }, model: { type: 'Unigram' } };
  const hooks = { normalizer: () => (text: string) => text, model: (chunk: string) => [chunk] };
  /** The shapes of transformers.js's tokenizer that the hooks rely on; `encode` says whether encoding uses them. */
  const fake = (encode: (core: { normalizer: (text: string) => string; model: { encode: (chunks: string[]) => string[] } }) => unknown) => {
    const normalizer = Object.assign((text: string) => normalizer.normalize(text), { config: json.normalizer, normalize: (text: string) => text });
    const core = { normalizer, model: { config: json.model, encode: (chunks: string[]) => chunks }, added_tokens: [] };
    return { _tokenizer: core, encode: () => encode(core) };
  };
  const failure = (run: () => void): unknown => {
    try {
      run();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it('should replace the normalizer and the model when encoding goes through them', () => {
    const tokenizer = fake((core) => core.model.encode([core.normalizer('a')]));
    installTokenizerHooks(tokenizer, json, { normalizer: () => (text) => text.toUpperCase(), model: (chunk) => [chunk, chunk] });
    expect(tokenizer._tokenizer.model.encode([tokenizer._tokenizer.normalizer('b')])).toEqual(['B', 'B']);
  });

  it('should refuse a transformers.js without the internals it hooks', () => {
    expect(ModelIntegrityError.isInstance(failure(() => installTokenizerHooks({}, json, hooks)))).toBe(true);
    const otherModel = fake(() => undefined);
    otherModel._tokenizer.model.config = { type: 'Unigram' };
    expect(ModelIntegrityError.isInstance(failure(() => installTokenizerHooks(otherModel, json, hooks)))).toBe(true);
  });

  it('should refuse a transformers.js whose encoding does not reach the replaced functions', () => {
    const error = failure(() => installTokenizerHooks(fake(() => []), json, hooks));
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/does not go through/);
  });
});
