import { Runnable, type RunnableConfig } from '@langchain/core/runnables';
import { concat, type IterableReadableStream } from '@langchain/core/utils/stream';

/**
 * A Runnable whose `stream()` yields a richer chunk type than its `invoke()` result, as LangGraph's Pregel does.
 * LangChain types `stream()` by the invoke result; this class widens that once, and subclasses narrow it again to
 * their own chunk type, so callers keep full types on both.
 *
 * Inside a larger sequence (`.pipe()`, `RunnableSequence`) it behaves as a plain `Runnable<Input, Output>`: the
 * next step receives the full result, never the chunks.
 */
export abstract class RunnableWithChunks<Input, Output, CallOptions extends RunnableConfig = RunnableConfig> extends Runnable<
  Input,
  Output,
  CallOptions
> {
  // `any` is what lets subclasses narrow the chunk type; see the class comment.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override stream(input: Input, options?: Partial<CallOptions>): Promise<IterableReadableStream<any>> {
    return super.stream(input, options);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  abstract override _streamIterator(input: Input, options?: Partial<CallOptions>): AsyncGenerator<any>;

  override async *transform(generator: AsyncGenerator<Input>, options?: Partial<CallOptions>): AsyncGenerator<Output> {
    let input: unknown;
    for await (const chunk of generator) input = input === undefined ? chunk : concat(input as object, chunk as object);
    yield await this.invoke(input as Input, options);
  }
}
