import type {
  JSONObject,
  LanguageModelV3,
  LanguageModelV3CallOptions,
  LanguageModelV3GenerateResult,
  LanguageModelV3StreamPart,
  LanguageModelV3StreamResult,
  LanguageModelV3Usage,
} from '@ai-sdk/provider';
import type { VqaInput, VqaResult, VqaStreamChunk } from '../../../chains/types.js';
import type { VqaChain } from '../../../chains/vqa-chain.js';
import { formatResultJson, reduceConversation, type ConversationShape, type ResultJsonFormat } from '../../conversation/index.js';
import type { ResolvedAdapterOptions } from '../adapter-options.js';
import { readPromptImage } from '../image-source.js';
import { streamCorrection as correction } from '../../conversation/stream-correction.js';
import { resultMetadata } from '../result-metadata.js';
import { PROVIDER_KEY, readCall } from './read-call.js';

const CONVERSATION_SHAPE: ConversationShape = { field: 'messages', imageHint: 'an image part (bytes, base64 or a data URL)' };

// Fallbacks without an LLM call, where 0 tokens is a fact; after a call that reported nothing the count is unknown.
const NO_LLM_CALL = new Set(['llm_disabled', 'llm_circuit_open']);

function usageOf(result: VqaResult): LanguageModelV3Usage {
  const called = result.source === 'llm' || !NO_LLM_CALL.has(result.fallbackReason?.code ?? '');
  const unknown = called ? undefined : 0;
  const input = result.usage?.inputTokens ?? unknown;
  const output = result.usage?.outputTokens ?? unknown;
  return {
    inputTokens: { total: input, noCache: undefined, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: output, text: undefined, reasoning: undefined },
    ...(result.usage ? { raw: { ...result.usage } } : {}),
  };
}

function providerMetadata(result: VqaResult): Record<string, JSONObject> {
  return { [PROVIDER_KEY]: resultMetadata(result) as JSONObject };
}

const FINISH = { unified: 'stop', raw: undefined } as const;

/**
 * The VQA+LLM chain as an AI SDK language model (specification v3, AI SDK 6). The prompt is reduced to one image
 * (a file part of type image/*), the last user message's text as the question and the earlier user/assistant turns
 * as history; system messages are ignored. The text is the answer sentence, or JSON made from the result's fields
 * when the call asks for JSON; `providerMetadata.vqaLlm` holds the whole result (caption, candidates, source,
 * fallbackReason, timings...). Usage is the LLM's own token counts.
 */
export class VqaLlmLanguageModel implements LanguageModelV3 {
  readonly specificationVersion = 'v3';
  readonly provider = 'vqa-llm';
  readonly modelId: string;
  /**
   * Image URLs come to this model as they are, so that its `imageUrls` setting decides (by default they are refused);
   * otherwise the AI SDK would download them itself, from any address.
   */
  readonly supportedUrls: Record<string, RegExp[]> = { 'image/*': [/^https?:\/\//] };
  private readonly options: ResolvedAdapterOptions;

  constructor(modelId: string, options: ResolvedAdapterOptions) {
    this.modelId = modelId;
    this.options = options;
  }

  /** The chain that answers. */
  get chain(): VqaChain {
    return this.options.chain;
  }

  private async prepare(call: LanguageModelV3CallOptions) {
    const read = await readCall(call, this.options.maxImageBytes);
    const { image, question, history } = reduceConversation(read.messages, CONVERSATION_SHAPE);
    const bytes = await readPromptImage(image, this.options, call.abortSignal);
    const input: VqaInput = { image: bytes, question, history, ...(read.topK !== undefined ? { topK: read.topK } : {}) };
    return { input, json: read.json, warnings: read.warnings };
  }

  async doGenerate(call: LanguageModelV3CallOptions): Promise<LanguageModelV3GenerateResult> {
    const { input, json, warnings } = await this.prepare(call);
    const timestamp = new Date();
    const result = await this.chain.invoke(input, { signal: call.abortSignal });
    return {
      content: [{ type: 'text', text: json ? formatResultJson(result, json) : result.answer }],
      finishReason: FINISH,
      usage: usageOf(result),
      providerMetadata: providerMetadata(result),
      response: { timestamp, modelId: this.modelId },
      warnings,
    };
  }

  async doStream(call: LanguageModelV3CallOptions): Promise<LanguageModelV3StreamResult> {
    const { input, json, warnings } = await this.prepare(call);
    // Cancelling the stream aborts the chain's run too, also while it waits on a model.
    // One plain controller fed by the caller's signal, not AbortSignal.any: a composite signal that LangChain leaves
    // listeners on stays alive as long as a long-lived caller signal does (see server/routes/request-scope.ts).
    const cancelled = new AbortController();
    const callerSignal = call.abortSignal;
    const onCallerAbort = (): void => cancelled.abort(callerSignal?.reason);
    if (callerSignal?.aborted) cancelled.abort(callerSignal.reason);
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    const release = (): void => callerSignal?.removeEventListener('abort', onCallerAbort);
    let chunks: AsyncIterator<VqaStreamChunk>;
    try {
      chunks = (await this.chain.stream(input, { signal: cancelled.signal }))[Symbol.asyncIterator]();
    } catch (error) {
      release();
      throw error;
    }
    const parts = streamParts(chunks, { warnings, json, modelId: this.modelId, includeRawChunks: call.includeRawChunks === true, release });
    const stream = new ReadableStream<LanguageModelV3StreamPart>({
      async pull(controller) {
        try {
          const step = await parts.next();
          if (step.done) controller.close();
          else controller.enqueue(step.value);
        } catch (error) {
          controller.error(error);
        }
      },
      async cancel(reason) {
        release(); // also when the stream was never read, so streamParts' finally never ran
        cancelled.abort(reason);
        await parts.return(undefined).catch(() => undefined);
      },
    });
    return { stream };
  }
}

interface StreamSettings {
  warnings: LanguageModelV3GenerateResult['warnings'];
  json?: ResultJsonFormat;
  modelId: string;
  includeRawChunks: boolean;
  /** Called once the stream is over, however it ends. */
  release: () => void;
}

async function* streamParts(chunks: AsyncIterator<VqaStreamChunk>, settings: StreamSettings): AsyncGenerator<LanguageModelV3StreamPart> {
  const id = 'answer';
  let started = false;
  let streamed = '';
  yield { type: 'stream-start', warnings: settings.warnings };
  yield { type: 'response-metadata', timestamp: new Date(), modelId: settings.modelId };
  try {
    for (let step = await chunks.next(); !step.done; step = await chunks.next()) {
      const chunk = step.value;
      if (settings.includeRawChunks) yield { type: 'raw', rawValue: chunk };
      if (chunk.type === 'vision') continue;
      // JSON is sent whole once the result is known: the streamed sentence is not part of it.
      const text = chunk.type === 'answer-delta' ? (settings.json ? '' : chunk.text) : settings.json ? formatResultJson(chunk.result, settings.json) : correction(streamed, chunk.result.answer);
      if (text) {
        if (!started) yield { type: 'text-start', id };
        started = true;
        streamed += text;
        yield { type: 'text-delta', id, delta: text };
      }
      if (chunk.type === 'result') {
        if (started) yield { type: 'text-end', id };
        yield { type: 'finish', finishReason: FINISH, usage: usageOf(chunk.result), providerMetadata: providerMetadata(chunk.result) };
      }
    }
  } finally {
    settings.release();
    await chunks.return?.();
  }
}
