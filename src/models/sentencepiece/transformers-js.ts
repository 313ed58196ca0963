/**
 * The one place where vqa-llm reaches into transformers.js's tokenizer internals.
 *
 * transformers.js (@huggingface/transformers 4.3.1, which bundles @huggingface/tokenizers 0.2.0 into its own dist)
 * offers no way to plug in a normalizer or a tokenizer model, and some of its implementations give other ids than the
 * Python tokenizers the models were trained with (see ../tokenizer.ts and ./unigram.ts). This module replaces, on one
 * tokenizer instance, the `normalize` method of chosen normalizer objects and the `encode` method of the model object.
 * It relies on these shapes of transformers.js's `PreTrainedTokenizer`, and checks each before touching anything:
 *
 *  - `tokenizer._tokenizer` is the core tokenizer, built from the tokenizer.json object handed to the constructor;
 *  - `core.normalizer` is the normalizer built from `tokenizerJson.normalizer`: each normalizer object keeps its JSON
 *    as `config` (the same object) and normalizes with its own `normalize(text)`; a `Sequence` keeps its parts, in
 *    order, as `normalizers`;
 *  - `core.model` keeps `tokenizerJson.model` as `config` and turns the pre-tokenized chunks into pieces with
 *    `encode(chunks)`;
 *  - `core.added_tokens` lists the added tokens with their `content` and `normalized` flag (normalized ones were
 *    matched through the normalizer when the tokenizer was built).
 *
 * After the replacement one probe encode checks that transformers.js does call the replaced functions. Any of this
 * failing means the installed transformers.js is not the version vqa-llm pins: loading throws ModelIntegrityError
 * rather than tokenizing differently from the exporter's reference.
 */
import { ModelIntegrityError } from '../../errors/model-integrity-error.js';

/** A replacement for one normalizer: gets the text and the normalizer's own normalize function. */
export type NormalizerReplacement = (text: string, original: (text: string) => string) => string;

export interface TokenizerHooks {
  /** Called with each normalizer's tokenizer.json config; a function replaces that normalizer's `normalize`. */
  normalizer?: (config: Record<string, unknown>) => NormalizerReplacement | undefined;
  /** Replaces the model's segmentation of one pre-tokenized chunk into pieces. */
  model?: (chunk: string) => string[];
}

interface NormalizerObject {
  config: unknown;
  normalize: (text: string) => string;
  normalizers?: unknown;
}

interface CoreTokenizer {
  normalizer: ((text: string) => string) | null;
  model: { config: unknown; encode: (chunks: string[]) => string[] };
  added_tokens: Array<{ content: string; normalized: boolean }>;
}

interface EncodingTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): unknown;
}

const isObject = (value: unknown): value is Record<string, unknown> => (typeof value === 'object' || typeof value === 'function') && value !== null;

function incompatible(what: string): ModelIntegrityError {
  return new ModelIntegrityError('bad_manifest', `This version of transformers.js cannot be given vqa-llm's tokenizer fixes: ${what}.`, {
    hint: 'Use the @huggingface/transformers version vqa-llm pins (4.3.1).',
  });
}

/**
 * Installs `hooks` on a transformers.js tokenizer built from `tokenizerJson`. Does nothing when no hook applies.
 *
 * @throws ModelIntegrityError `bad_manifest` when transformers.js does not have the shapes this relies on.
 */
export function installTokenizerHooks(tokenizer: object, tokenizerJson: Record<string, unknown>, hooks: TokenizerHooks): void {
  const core = (tokenizer as { _tokenizer?: unknown })._tokenizer;
  if (!isObject(core)) throw incompatible('the tokenizer has no _tokenizer');
  const { normalizer, model, added_tokens: addedTokens } = core as Partial<CoreTokenizer>;

  // Normalizers: find the ones to replace first, replace them only when all checks passed.
  const replacements: Array<{ node: NormalizerObject; replacement: NormalizerReplacement }> = [];
  if (hooks.normalizer !== undefined && isObject(tokenizerJson.normalizer)) {
    if (!isObject(normalizer)) throw incompatible('the tokenizer has no normalizer object');
    collectNormalizers(tokenizerJson.normalizer, normalizer, hooks.normalizer, replacements);
  }
  let replaceModel = false;
  if (hooks.model !== undefined) {
    if (!isObject(model) || model.config !== tokenizerJson.model || typeof model.encode !== 'function') {
      throw incompatible('the tokenizer model is not the object built from tokenizer.json, or has no encode method');
    }
    replaceModel = true;
  }
  if (replacements.length === 0 && !replaceModel) return;

  // Added tokens that are matched after normalization were normalized when the tokenizer was built, with the
  // normalizer being replaced: they must come out the same.
  if (!Array.isArray(addedTokens)) throw incompatible('the tokenizer has no added_tokens list');
  const normalizeAll = normalizer as ((text: string) => string) | null | undefined;
  const normalizedTokens =
    replacements.length === 0 || typeof normalizeAll !== 'function'
      ? []
      : addedTokens.filter((token) => token.normalized && typeof token.content === 'string').map((token) => ({ content: token.content, before: normalizeAll(token.content) }));

  const reached = { normalizer: replacements.length === 0, model: !replaceModel };
  for (const { node, replacement } of replacements) {
    const original = node.normalize.bind(node);
    node.normalize = (text: string) => {
      reached.normalizer = true;
      return replacement(text, original);
    };
  }
  if (replaceModel) {
    const segment = hooks.model!;
    (model as CoreTokenizer['model']).encode = (chunks: string[]) => {
      reached.model = true;
      return chunks.flatMap((chunk) => segment(chunk));
    };
  }

  for (const { content, before } of normalizedTokens) {
    if (normalizeAll!(content) !== before) {
      throw new ModelIntegrityError('bad_manifest', `tokenizer.json has an added token ${JSON.stringify(content)} that the tokenizer fixes would normalize differently.`, {
        hint: 'Mark the added token "normalized": false, as the exporter does for special tokens.',
      });
    }
  }

  // The probe: a plain word reaches both the normalizer and the model.
  (tokenizer as EncodingTokenizer).encode('a', { add_special_tokens: false });
  if (!reached.normalizer || !reached.model) {
    throw incompatible(`encoding does not go through the replaced ${reached.normalizer ? 'model' : 'normalizer'}`);
  }
}

/** Walks the normalizer JSON and the normalizer objects side by side, collecting those `choose` replaces. */
function collectNormalizers(
  config: Record<string, unknown>,
  node: unknown,
  choose: NonNullable<TokenizerHooks['normalizer']>,
  found: Array<{ node: NormalizerObject; replacement: NormalizerReplacement }>,
): void {
  const object = node as Partial<NormalizerObject>;
  if (!isObject(node) || object.config !== config || typeof object.normalize !== 'function') {
    throw incompatible(`the ${String(config.type)} normalizer is not the object built from its tokenizer.json entry`);
  }
  const replacement = choose(config);
  if (replacement !== undefined) {
    found.push({ node: object as NormalizerObject, replacement });
    return;
  }
  if (config.type === 'Sequence' && Array.isArray(config.normalizers)) {
    const parts = object.normalizers;
    if (!Array.isArray(parts) || parts.length !== config.normalizers.length) {
      throw incompatible('a Sequence normalizer does not keep its parts as normalizers');
    }
    config.normalizers.forEach((part, index) => {
      if (isObject(part)) collectNormalizers(part, parts[index], choose, found);
    });
  }
}
