import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import { BaseChatModel, type BaseChatModelCallOptions, type BaseChatModelParams } from '@langchain/core/language_models/chat_models';
import { AIMessage, AIMessageChunk, type BaseMessage, type UsageMetadata } from '@langchain/core/messages';
import { ChatGenerationChunk, type ChatResult } from '@langchain/core/outputs';
import type { RunnableConfig } from '@langchain/core/runnables';
import type { VqaInput, VqaResult } from '../../chains/types.js';
import type { VqaChain } from '../../chains/vqa-chain.js';
import { reduceConversation, type ConversationShape } from '../conversation/index.js';
import { InvalidConversationError, InvalidOptionError } from '../errors/index.js';
import { resolveAdapterOptions, type ResolvedAdapterOptions, type VqaAdapterOptions } from './adapter-options.js';
import { imageFromBase64, imageFromBytes, imageFromString, readPromptImage, type PromptImage, type PromptMessage } from './image-source.js';
import { streamCorrection as correction } from '../conversation/stream-correction.js';
import { resultMetadata } from './result-metadata.js';

export interface ChatVqaLlmCallOptions extends BaseChatModelCallOptions {
  /** How many VQA candidates to compute for this call. Default: the chain's `topK`. */
  topK?: number;
}

/** The chain (`{ chain }`, or `{ vision, llm, ... }` to build one), the image settings, and LangChain's model params. */
export type ChatVqaLlmFields = VqaAdapterOptions & Omit<BaseChatModelParams, 'maxConcurrency'>;

// LangGraph's "messages" stream mode skips chat model runs with this tag: the chain's inner LLM writes raw JSON,
// and what an agent's user should see is this model's sentence.
const NO_STREAM_TAG = 'langsmith:nostream';

type Block = Record<string, unknown>;

const CONVERSATION_SHAPE: ConversationShape = { field: 'messages', imageHint: 'an image block (a data URL, base64 data or bytes)' };

function describe(index: number, type: string, block?: number): string {
  return `message ${index + 1} (${type})${block === undefined ? '' : `, block ${block + 1}`}`;
}

/** An image block: OpenAI's `image_url`, LangChain 1.x's standard `image` (url or data), or the older `source_type` form. */
async function readImageBlock(block: Block, where: string, maxImageBytes: number): Promise<PromptImage> {
  if (block.type === 'image_url') {
    const value = block.image_url;
    const url = typeof value === 'string' ? value : typeof value === 'object' && value !== null ? (value as Block).url : undefined;
    if (typeof url !== 'string' || url.length === 0) throw new InvalidConversationError('unsupported_content', `${where} is an image_url block without a URL.`, { param: where });
    return imageFromString(url, where, maxImageBytes);
  }
  const sourceType = block.source_type;
  if (sourceType === 'id' || block.fileId !== undefined) {
    throw new InvalidConversationError('unsupported_content', `${where} refers to an image by a provider's file id; send its bytes, base64 data or a data URL.`, { param: where });
  }
  if (typeof block.url === 'string' && (sourceType === undefined || sourceType === 'url')) return imageFromString(block.url, where, maxImageBytes);
  if (block.data instanceof Uint8Array) return imageFromBytes(block.data, where, maxImageBytes);
  if (typeof block.data === 'string' && (sourceType === undefined || sourceType === 'base64')) {
    return /^data:/i.test(block.data) ? imageFromString(block.data, where, maxImageBytes) : imageFromBase64(block.data, where, maxImageBytes);
  }
  throw new InvalidConversationError('unsupported_content', `${where} is an image block without a url or data.`, { param: where });
}

async function readHumanContent(content: BaseMessage['content'], index: number, maxImageBytes: number): Promise<{ text: string; images: PromptImage[] }> {
  if (typeof content === 'string') return { text: content, images: [] };
  const texts: string[] = [];
  const images: PromptImage[] = [];
  for (const [blockIndex, block] of (content as Block[]).entries()) {
    const where = describe(index, 'human', blockIndex);
    if (block.type === 'text' && typeof block.text === 'string') texts.push(block.text);
    else if (block.type === 'image_url' || block.type === 'image') images.push(await readImageBlock(block, where, maxImageBytes));
    else {
      throw new InvalidConversationError('unsupported_content', `${where} is a ${JSON.stringify(String(block.type))} block; ChatVqaLlm reads text and image blocks.`, { param: where });
    }
  }
  return { text: texts.join('\n'), images };
}

async function readMessages(messages: readonly BaseMessage[], maxImageBytes: number): Promise<PromptMessage[]> {
  const read: PromptMessage[] = [];
  for (const [index, message] of messages.entries()) {
    const where = describe(index, message.type);
    switch (message.type) {
      case 'system':
      case 'developer':
        read.push({ role: 'system', text: message.text, images: [], param: where });
        break;
      case 'human':
        read.push({ role: 'user', ...(await readHumanContent(message.content, index, maxImageBytes)), param: where });
        break;
      case 'ai':
        if (AIMessage.isInstance(message) && (message.tool_calls?.length ?? 0) > 0) {
          throw new InvalidConversationError('unsupported_content', `${where} holds tool calls; ChatVqaLlm answers with its own pipeline and never calls tools.`, { param: where });
        }
        // An earlier answer: its text, whatever other blocks (reasoning) came with it.
        read.push({ role: 'assistant', text: message.text, images: [], param: where });
        break;
      default:
        throw new InvalidConversationError('unsupported_content', `${where} is not supported; send system, human and AI messages.`, { param: where });
    }
  }
  return read;
}

function usageMetadata(result: VqaResult): UsageMetadata | undefined {
  if (result.usage) return { input_tokens: result.usage.inputTokens, output_tokens: result.usage.outputTokens, total_tokens: result.usage.totalTokens };
  // Without an LLM call 0 tokens is a fact; after a call that reported nothing the count is unknown.
  const called = result.source === 'llm' || !['llm_disabled', 'llm_circuit_open'].includes(result.fallbackReason?.code ?? '');
  return called ? undefined : { input_tokens: 0, output_tokens: 0, total_tokens: 0 };
}

/** The result's fields a caller reads beside the sentence: caption, candidates, source, fallbackReason, timings... */
function responseMetadata(result: VqaResult): Record<string, unknown> {
  const { answer: _answer, question: _question, usage: _usage, ...fields } = resultMetadata(result);
  return { ...fields, finish_reason: 'stop' };
}

/**
 * The VQA+LLM chain as a LangChain chat model: `invoke`, `stream` and `batch` take messages with one image (an
 * `image_url` block with a data URL, or a standard `image` block with base64 data or bytes; http(s) URLs only with
 * `imageUrls`) and answer the last human message's question, earlier human/AI turns serving as context. The
 * message's `response_metadata` carries the result's caption, candidates, source, fallbackReason, shortAnswer and
 * timings; `usage_metadata` the LLM's token counts.
 *
 * @throws {InvalidOptionError} for a bad option, naming it.
 *
 * @example
 * ```ts
 * const model = new ChatVqaLlm({ vision: await createVisionModels(), llm: createChatModel() });
 * const image = `data:image/jpeg;base64,${(await readFile('fishing.jpg')).toString('base64')}`;
 * const reply = await model.invoke([
 *   new HumanMessage({ content: [{ type: 'image_url', image_url: { url: image } }, { type: 'text', text: "What is in the man's hand?" }] }),
 * ]);
 * console.log(reply.text, reply.response_metadata.candidates, reply.response_metadata.source);
 * ```
 */
export class ChatVqaLlm extends BaseChatModel<ChatVqaLlmCallOptions, AIMessageChunk> {
  static override lc_name(): string {
    return 'ChatVqaLlm';
  }

  /** The chain that answers. */
  readonly chain: VqaChain;
  private readonly adapter: ResolvedAdapterOptions;

  constructor(fields: ChatVqaLlmFields) {
    if (typeof fields !== 'object' || fields === null) throw new InvalidOptionError('invalid_value', 'ChatVqaLlm needs an options object: { chain } or { vision, llm }.');
    // Only LangChain's own params go to the base class, which keeps them as its serialisable kwargs; the vision
    // models and the LLM stay out of those.
    super({ callbacks: fields.callbacks, tags: fields.tags, metadata: fields.metadata, verbose: fields.verbose, disableStreaming: fields.disableStreaming, outputVersion: fields.outputVersion });
    this.adapter = resolveAdapterOptions(fields, 'ChatVqaLlm');
    this.chain = this.adapter.chain;
  }

  _llmType(): string {
    return 'vqa-llm';
  }

  override get callKeys(): string[] {
    return [...super.callKeys, 'topK'];
  }

  private async prepare(messages: BaseMessage[], options: this['ParsedCallOptions']): Promise<VqaInput> {
    const { image, question, history } = reduceConversation(await readMessages(messages, this.adapter.maxImageBytes), CONVERSATION_SHAPE);
    const bytes = await readPromptImage(image, this.adapter, options.signal);
    return { image: bytes, question, history, ...(options.topK !== undefined ? { topK: options.topK } : {}) };
  }

  // A chat model's run cannot have child runs, so the chain runs in whatever context surrounds this call (an
  // agent's step, say), tagged so that its inner LLM's tokens are not mistaken for this model's.
  private chainConfig(options: this['ParsedCallOptions']): RunnableConfig {
    return { signal: options.signal, tags: [NO_STREAM_TAG] };
  }

  private finalMessage(result: VqaResult, content: string, Message: typeof AIMessage | typeof AIMessageChunk) {
    const usage = usageMetadata(result);
    return new Message({ content, response_metadata: responseMetadata(result), ...(usage ? { usage_metadata: usage } : {}) });
  }

  async _generate(messages: BaseMessage[], options: this['ParsedCallOptions']): Promise<ChatResult> {
    const input = await this.prepare(messages, options);
    const result = await this.chain.invoke(input, this.chainConfig(options));
    const usage = usageMetadata(result);
    return {
      generations: [{ text: result.answer, message: this.finalMessage(result, result.answer, AIMessage) }],
      ...(usage ? { llmOutput: { tokenUsage: { promptTokens: usage.input_tokens, completionTokens: usage.output_tokens, totalTokens: usage.total_tokens } } } : {}),
    };
  }

  override async *_streamResponseChunks(messages: BaseMessage[], options: this['ParsedCallOptions'], runManager?: CallbackManagerForLLMRun): AsyncGenerator<ChatGenerationChunk> {
    const input = await this.prepare(messages, options);
    let streamed = '';
    for await (const chunk of await this.chain.stream(input, this.chainConfig(options))) {
      if (chunk.type === 'answer-delta') {
        streamed += chunk.text;
        const generation = new ChatGenerationChunk({ text: chunk.text, message: new AIMessageChunk({ content: chunk.text }) });
        yield generation;
        await runManager?.handleLLMNewToken(chunk.text, undefined, undefined, undefined, undefined, { chunk: generation });
      } else if (chunk.type === 'result') {
        // The metadata comes once, in the last chunk, so that concatenating the chunks keeps it as it is.
        const rest = correction(streamed, chunk.result.answer);
        const message = this.finalMessage(chunk.result, rest, AIMessageChunk) as AIMessageChunk;
        const generation = new ChatGenerationChunk({ text: rest, message });
        yield generation;
        if (rest) await runManager?.handleLLMNewToken(rest, undefined, undefined, undefined, undefined, { chunk: generation });
      }
    }
  }
}
