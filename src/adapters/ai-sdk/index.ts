// vqa-llm/ai-sdk: the VQA+LLM chain as a Vercel AI SDK provider, in-process. Loaded only through this subpath, so
// that users without the AI SDK never load it; `@ai-sdk/provider` is an optional peer dependency.
import { NoSuchModelError, type ProviderV3 } from '@ai-sdk/provider';
import type { VqaChain } from '../../../chains/vqa-chain.js';
import { InvalidOptionError } from '../../errors/index.js';
import { resolveAdapterOptions, type VqaAdapterOptions } from '../adapter-options.js';
import { VqaLlmLanguageModel } from './vqa-llm-language-model.js';

export { VqaLlmLanguageModel } from './vqa-llm-language-model.js';
export { PROVIDER_KEY } from './read-call.js';
export { InvalidConversationError, type InvalidConversationReason } from '../../errors/index.js';
export type { VqaAdapterOptions, VqaAdapterImageOptions } from '../adapter-options.js';

export type VqaLlmProviderOptions = VqaAdapterOptions & {
  /** The one model id this provider answers to, also reported as the response's model id. Default `vqa-llm`. */
  modelId?: string;
};

/** A provider with one language model: call it, or its `languageModel`, with no id or its id. */
export interface VqaLlmProvider extends ProviderV3 {
  (modelId?: string): VqaLlmLanguageModel;
  languageModel(modelId?: string): VqaLlmLanguageModel;
  /** The chain that answers. */
  readonly chain: VqaChain;
}

/**
 * Creates an AI SDK provider (language model specification v3, for `ai` 6) that answers with the VQA+LLM chain in
 * this process, with no server. Messages: one image (an `image` part: bytes, base64 or a data URL; http(s) URLs only
 * with `imageUrls`), the question as the last user message's text, earlier turns as follow-up context. The whole
 * result (caption, candidates, source, fallbackReason, timings) is in `providerMetadata.vqaLlm`.
 *
 * @throws {InvalidOptionError} for a bad option, naming it.
 *
 * @example
 * ```ts
 * import { generateText, streamText } from 'ai';
 * import { createChatModel, createVisionModels } from 'vqa-llm';
 * import { createVqaLlm } from 'vqa-llm/ai-sdk';
 *
 * const vqaLlm = createVqaLlm({ vision: await createVisionModels(), llm: createChatModel() });
 * const { text, providerMetadata } = await generateText({
 *   model: vqaLlm(),
 *   messages: [{ role: 'user', content: [{ type: 'image', image: await readFile('fishing.jpg') }, { type: 'text', text: "What is in the man's hand?" }] }],
 * });
 * console.log(text, providerMetadata?.vqaLlm?.candidates);
 * ```
 */
export function createVqaLlm(options: VqaLlmProviderOptions): VqaLlmProvider {
  const resolved = resolveAdapterOptions(options, 'createVqaLlm');
  const modelId = options.modelId ?? 'vqa-llm';
  if (typeof modelId !== 'string' || modelId.length === 0) throw new InvalidOptionError('invalid_value', `modelId must be a non-empty string, got ${JSON.stringify(modelId)}.`);
  const languageModel = (id: string = modelId): VqaLlmLanguageModel => {
    if (id !== modelId) {
      throw new NoSuchModelError({ modelId: id, modelType: 'languageModel', message: `This vqa-llm provider has one model, ${JSON.stringify(modelId)}; not ${JSON.stringify(id)}.` });
    }
    return new VqaLlmLanguageModel(modelId, resolved);
  };
  const noSuchModel = (modelType: 'embeddingModel' | 'imageModel') => (id: string): never => {
    throw new NoSuchModelError({ modelId: id, modelType, message: `vqa-llm provides a language model only, no ${modelType}.` });
  };
  const provider = (id?: string) => languageModel(id);
  return Object.assign(provider, {
    specificationVersion: 'v3' as const,
    languageModel,
    embeddingModel: noSuchModel('embeddingModel'),
    imageModel: noSuchModel('imageModel'),
    chain: resolved.chain,
  });
}
