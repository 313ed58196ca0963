import type { IterableReadableStream } from '@langchain/core/utils/stream';
import type { VqaTurn } from '../prompts/vqa-v1.js';
import type { ImageInput } from '../src/types.js';
import { RunnableWithChunks } from './runnable-with-chunks.js';
import type { VqaCallOptions, VqaChainOptions, VqaInput, VqaResult, VqaStreamChunk } from './types.js';
import { VqaChain } from './vqa-chain.js';

/** One turn of a conversation about one image: the question, and the history so far (oldest first). */
export type VqaChatInput = VqaInput;

/** A turn's result plus the history to pass with the next question (this turn appended, bounded). */
export interface VqaChatResult extends VqaResult {
  history: VqaTurn[];
}

export type VqaChatStreamChunk = VqaStreamChunk<VqaChatResult>;

function appendTurn(history: readonly VqaTurn[] | undefined, result: VqaResult, maxTurns: number): VqaTurn[] {
  const turns = [...(history ?? []), { question: result.question, shortAnswer: result.shortAnswer, answer: result.answer }];
  return maxTurns === 0 ? [] : turns.slice(-maxTurns);
}

/**
 * A stateless chat Runnable for a chatbot: each call is one question about the image with the history so far, and
 * returns the answer and the next history. Follow-ups about the same image reuse the vision models' per-image
 * cache (caption, image embeddings), so only the question's fusion pass and the LLM run again. A server keeps the
 * history per conversation; {@link VqaChatSession} keeps it in memory.
 */
export class VqaChat extends RunnableWithChunks<VqaChatInput, VqaChatResult, VqaCallOptions, VqaChatStreamChunk> {
  lc_namespace = ['vqa_llm', 'chains'];

  static override lc_name(): string {
    return 'VqaChat';
  }

  readonly chain: VqaChain;

  constructor(options: VqaChainOptions | VqaChain) {
    super();
    this.chain = options instanceof VqaChain ? options : new VqaChain(options);
  }

  override stream(input: VqaChatInput, options?: Partial<VqaCallOptions>): Promise<IterableReadableStream<VqaChatStreamChunk>> {
    return super.stream(input, options);
  }

  protected override async *streamChunks(input: VqaChatInput, config: Partial<VqaCallOptions>): AsyncGenerator<VqaChatStreamChunk> {
    for await (const chunk of await this.chain.stream(input, config)) {
      if (chunk.type === 'result') {
        yield { type: 'result', result: { ...chunk.result, history: appendTurn(input.history, chunk.result, this.chain.options.maxHistoryTurns) } };
      } else {
        yield chunk;
      }
    }
  }

  protected override outputOf(chunk: VqaChatStreamChunk): VqaChatResult | undefined {
    return chunk.type === 'result' ? chunk.result : undefined;
  }
}

/**
 * Builds a {@link VqaChat} from the same options as {@link createVqaChain} (or wraps an existing chain).
 *
 * @example
 * ```ts
 * const chat = createVqaChat({ vision, llm });
 * const first = await chat.invoke({ image: 'dogs.jpg', question: 'How many dogs are there?' });
 * const second = await chat.invoke({ image: 'dogs.jpg', question: 'What breed are they?', history: first.history });
 * ```
 */
export function createVqaChat(options: VqaChainOptions | VqaChain): VqaChat {
  return new VqaChat(options);
}

/**
 * A conversation about one image kept in memory, for a terminal or a single-user app.
 *
 * @example
 * ```ts
 * const session = new VqaChatSession(createVqaChat({ vision, llm }), 'dogs.jpg');
 * console.log((await session.ask('How many dogs are there?')).answer);
 * console.log((await session.ask('What color are their tongues?')).answer);
 * ```
 */
export class VqaChatSession {
  private turns: VqaTurn[] = [];

  constructor(
    readonly chat: VqaChat,
    readonly image: ImageInput,
  ) {}

  /** The turns so far, oldest first, bounded by the chain's `maxHistoryTurns`. */
  get history(): readonly VqaTurn[] {
    return this.turns;
  }

  async ask(question: string, options?: Partial<VqaCallOptions>): Promise<VqaChatResult> {
    const result = await this.chat.invoke({ image: this.image, question, history: this.turns }, options);
    this.turns = result.history;
    return result;
  }

  /** Like {@link ask}, streaming; the history advances when the `result` chunk arrives. */
  async *stream(question: string, options?: Partial<VqaCallOptions>): AsyncGenerator<VqaChatStreamChunk> {
    for await (const chunk of await this.chat.stream({ image: this.image, question, history: this.turns }, options)) {
      if (chunk.type === 'result') this.turns = chunk.result.history;
      yield chunk;
    }
  }

  reset(): void {
    this.turns = [];
  }
}
