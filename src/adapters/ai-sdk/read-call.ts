// The AI SDK's call options (LanguageModelV3CallOptions) read for the chain: the prompt reduced to one image, one
// question and the earlier turns; what cannot be honoured refused by name; what is merely ignored warned about.
import type { LanguageModelV3CallOptions, LanguageModelV3FilePart, LanguageModelV3Prompt, SharedV3Warning } from '@ai-sdk/provider';
import { UnsupportedFunctionalityError } from '@ai-sdk/provider';
import { readResultSchema, type ResultJsonFormat } from '../../conversation/index.js';
import { InvalidConversationError, InvalidOptionError } from '../../errors/index.js';
import { imageFromBase64, imageFromBytes, imageFromString, type PromptImage, type PromptMessage } from '../image-source.js';

/** The key of this provider's entries in `providerOptions` and `providerMetadata`. */
export const PROVIDER_KEY = 'vqaLlm';

const NO_TOOLS =
  'vqa-llm answers a question about an image with its own pipeline (captioner, VQA model, LLM) and never calls tools. ' +
  "Leave `tools` out, or set toolChoice: 'none'.";

// Sampling settings the pipeline's own LLM settings decide; ignored with a warning, as the server ignores them.
const IGNORED_SETTINGS = ['maxOutputTokens', 'temperature', 'stopSequences', 'topP', 'topK', 'presencePenalty', 'frequencyPenalty', 'seed'] as const;

export interface ReadCall {
  messages: PromptMessage[];
  /** JSON made from the result's fields, when the call asks for JSON; otherwise the sentence. */
  json?: ResultJsonFormat;
  /** `providerOptions.vqaLlm.topK`: how many VQA candidates to compute. */
  topK?: number;
  warnings: SharedV3Warning[];
}

function describe(index: number, role: string, part?: number): string {
  return `message ${index + 1} (${role})${part === undefined ? '' : `, part ${part + 1}`}`;
}

async function readImagePart(part: LanguageModelV3FilePart, where: string, maxImageBytes: number): Promise<PromptImage> {
  if (!/^image\//i.test(part.mediaType)) {
    throw new UnsupportedFunctionalityError({
      functionality: `file parts of type ${part.mediaType}`,
      message: `${where} is a file of type ${part.mediaType}; vqa-llm reads images (image/*) and text.`,
    });
  }
  const { data } = part;
  if (data instanceof Uint8Array) return imageFromBytes(data, where, maxImageBytes);
  if (data instanceof URL) return imageFromString(data.href, where, maxImageBytes);
  if (/^(data:|https?:\/\/)/i.test(data)) return imageFromString(data, where, maxImageBytes);
  return imageFromBase64(data, where, maxImageBytes);
}

async function readPrompt(prompt: LanguageModelV3Prompt, maxImageBytes: number): Promise<PromptMessage[]> {
  const messages: PromptMessage[] = [];
  for (const [index, message] of prompt.entries()) {
    if (message.role === 'system') {
      messages.push({ role: 'system', text: message.content, images: [], param: describe(index, 'system') });
      continue;
    }
    if (message.role === 'tool') throw new UnsupportedFunctionalityError({ functionality: 'tools', message: `${describe(index, 'tool')} is a tool result. ${NO_TOOLS}` });
    const texts: string[] = [];
    const images: PromptImage[] = [];
    for (const [partIndex, part] of message.content.entries()) {
      const where = describe(index, message.role, partIndex);
      switch (part.type) {
        case 'text':
          texts.push(part.text);
          break;
        case 'file':
          images.push(await readImagePart(part, where, maxImageBytes));
          break;
        case 'reasoning':
          // An earlier answer's reasoning (from another model): not part of what the chain sees.
          break;
        default:
          throw new UnsupportedFunctionalityError({ functionality: 'tools', message: `${where} is a ${part.type} part. ${NO_TOOLS}` });
      }
    }
    messages.push({ role: message.role, text: texts.join('\n'), images, param: describe(index, message.role) });
  }
  return messages;
}

function readJsonFormat(responseFormat: LanguageModelV3CallOptions['responseFormat']): ResultJsonFormat | undefined {
  if (responseFormat === undefined || responseFormat.type === 'text') return undefined;
  if (responseFormat.schema === undefined) return {};
  try {
    return readResultSchema(responseFormat.schema, { param: 'responseFormat.schema', filledBy: 'the pipeline' });
  } catch (error) {
    if (!InvalidConversationError.isInstance(error)) throw error;
    throw new UnsupportedFunctionalityError({
      functionality: 'responseFormat json schema',
      message:
        `${error.message} At: ${error.param}. vqa-llm answers JSON with an object whose properties are among ` +
        'answer, shortAnswer, question, caption, source (strings) and candidates ({ answer, score }[]), with no further constraint.',
    });
  }
}

function readTopK(providerOptions: LanguageModelV3CallOptions['providerOptions']): number | undefined {
  const topK = providerOptions?.[PROVIDER_KEY]?.topK;
  if (topK === undefined) return undefined;
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 1) {
    throw new InvalidOptionError('invalid_value', `providerOptions.${PROVIDER_KEY}.topK must be a positive integer, got ${JSON.stringify(topK)}.`);
  }
  return topK;
}

/**
 * Reads one call. Refused, never silently ignored, because they would change the answer: tools (unless toolChoice
 * is 'none'), tool messages and parts, non-image files, JSON schemas the pipeline cannot fill. Sampling settings are
 * ignored with an `unsupported` warning each: the pipeline's LLM settings decide.
 *
 * @throws {UnsupportedFunctionalityError} naming what cannot be honoured.
 */
export async function readCall(call: LanguageModelV3CallOptions, maxImageBytes: number): Promise<ReadCall> {
  if ((call.tools?.length ?? 0) > 0 && call.toolChoice?.type !== 'none') {
    throw new UnsupportedFunctionalityError({ functionality: 'tools', message: `Tools are not supported: ${NO_TOOLS}` });
  }
  const warnings: SharedV3Warning[] = [];
  if ((call.tools?.length ?? 0) > 0) warnings.push({ type: 'unsupported', feature: 'tools', details: "Ignored: toolChoice is 'none' and vqa-llm never calls tools." });
  for (const setting of IGNORED_SETTINGS) {
    if (call[setting] !== undefined) warnings.push({ type: 'unsupported', feature: setting, details: "Ignored: the pipeline's LLM settings decide." });
  }
  const json = readJsonFormat(call.responseFormat);
  const topK = readTopK(call.providerOptions);
  const messages = await readPrompt(call.prompt, maxImageBytes);
  return { messages, warnings, ...(json ? { json } : {}), ...(topK !== undefined ? { topK } : {}) };
}
