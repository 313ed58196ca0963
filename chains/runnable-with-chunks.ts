import type { CallbackManagerForChainRun } from '@langchain/core/callbacks/manager';
import { getCallbackManagerForConfig, patchConfig, Runnable, type RunnableConfig } from '@langchain/core/runnables';
import { concat, type IterableReadableStream } from '@langchain/core/utils/stream';

/**
 * A Runnable whose `stream()` yields a richer chunk type than its `invoke()` result, as LangGraph's Pregel does.
 * LangChain types `stream()` by the invoke result; this class widens that once, and subclasses narrow it again to
 * their own chunk type, so callers keep full types on both.
 *
 * Every call, `invoke` included, is one run of its own (named by `lc_name()`, or the config's `runName`) that
 * callbacks, tracers and `streamEvents` see: `on_chain_start`, one `on_chain_stream` per chunk, and `on_chain_end`
 * whose output is the invoke result, not the chunks. Subclasses write {@link streamChunks} and {@link outputOf};
 * the steps they start with the config they are given are children of that run.
 *
 * Inside a larger sequence (`.pipe()`, `RunnableSequence`) it behaves as a plain `Runnable<Input, Output>`: the
 * next step receives the full result, never the chunks.
 */
export abstract class RunnableWithChunks<Input, Output, CallOptions extends RunnableConfig = RunnableConfig, Chunk = unknown> extends Runnable<
  Input,
  Output,
  CallOptions
> {
  /** One call's chunks. `config` carries callbacks whose parent is this call's run: pass it to every step. */
  protected abstract streamChunks(input: Input, config: Partial<CallOptions>): AsyncGenerator<Chunk>;

  /** The invoke result that a chunk carries (the last chunk does), else undefined. */
  protected abstract outputOf(chunk: Chunk): Output | undefined;

  // `any` is what lets subclasses narrow the chunk type; see the class comment.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override stream(input: Input, options?: Partial<CallOptions>): Promise<IterableReadableStream<any>> {
    return super.stream(input, options);
  }

  /** The stream's last chunk's output: one code path, so invoke and stream report the same runs. */
  override async invoke(input: Input, options?: Partial<CallOptions>): Promise<Output> {
    let output: Output | undefined;
    for await (const chunk of await this.stream(input, options)) output = this.outputOf(chunk as Chunk) ?? output;
    if (output === undefined) throw new Error(`${this.getName()} ended without a result.`);
    return output;
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override async *_streamIterator(input: Input, options?: Partial<CallOptions>): AsyncGenerator<any> {
    async function* once(): AsyncGenerator<Input> {
      yield input;
    }
    const transformer = (inputs: AsyncGenerator<Input>, runManager?: CallbackManagerForChainRun, config?: Partial<CallOptions>) =>
      this.chunksInRun(inputs, runManager, config ?? {});
    // _transformStreamWithConfig opens the run, reports each chunk to streamEvents and closes it; it is typed for
    // chunks that concatenate into the output, which these do through _concatOutputChunks below.
    yield* this._transformStreamWithConfig(once(), transformer as never, options) as AsyncGenerator<Chunk>;
  }

  // The run's recorded output (on_chain_end, tracers) is the invoke result rather than a merge of unlike chunks.
  override _concatOutputChunks<O>(first: O, second: O): O {
    const output = this.outputOf(second as unknown as Chunk);
    return (output === undefined ? first : output) as unknown as O;
  }

  override async *transform(generator: AsyncGenerator<Input>, options?: Partial<CallOptions>): AsyncGenerator<Output> {
    let input: unknown;
    for await (const chunk of generator) input = input === undefined ? chunk : concat(input as object, chunk as object);
    yield await this.invoke(input as Input, options);
  }

  private async *chunksInRun(inputs: AsyncGenerator<Input>, runManager: CallbackManagerForChainRun | undefined, config: Partial<CallOptions>): AsyncGenerator<Chunk> {
    let input: Input | undefined;
    for await (const chunk of inputs) input = chunk;
    const childConfig = patchConfig(config, { callbacks: runManager?.getChild() });
    delete childConfig.runId;
    yield* this.streamChunks(input as Input, childConfig);
  }
}

/** What {@link traceSteps} needs: the child run's name and input, the event name, and the steps to run in it. */
export interface TraceStepsOptions<Yield, Return> {
  runName: string;
  /** Recorded as the run's input (on_chain_start, tracers). */
  inputs: Record<string, unknown>;
  /** The parent's config; the run is a child of the run its callbacks belong to. */
  config: RunnableConfig;
  /** Each yielded value is dispatched as this custom event (streamEvents: `on_custom_event` with this name). */
  eventName: string;
  eventData: (value: Yield) => Record<string, unknown>;
  /** The steps; what they start with the config they are given (a chat model) is a child of this run. */
  steps: (config: RunnableConfig) => AsyncGenerator<Yield, Return>;
}

/**
 * Runs a generator as a child run: callbacks and streamEvents see it start, dispatch one custom event per yielded
 * value, and end with the generator's return value as output (or with its error). It yields what the steps yield
 * and returns what they return, so the caller streams the same values. A caller that stops early ends the steps
 * (their `finally` runs) and the run, as an error.
 */
export async function* traceSteps<Yield, Return extends object>(options: TraceStepsOptions<Yield, Return>): AsyncGenerator<Yield, Return> {
  const callbackManager = await getCallbackManagerForConfig(options.config);
  const runManager = await callbackManager?.handleChainStart(
    { lc: 1, type: 'not_implemented', id: ['vqa_llm', 'chains', options.runName] },
    options.inputs,
    undefined,
    undefined,
    undefined,
    undefined,
    options.runName,
  );
  const childConfig = patchConfig(options.config, { callbacks: runManager?.getChild() });
  delete childConfig.runId;
  const steps = options.steps(childConfig);
  let ended = false;
  try {
    for (;;) {
      const step = await steps.next();
      if (step.done) {
        ended = true;
        await runManager?.handleChainEnd(step.value as Record<string, unknown>);
        return step.value;
      }
      await runManager?.handleCustomEvent(options.eventName, options.eventData(step.value));
      yield step.value;
    }
  } catch (error) {
    ended = true;
    await runManager?.handleChainError(error);
    throw error;
  } finally {
    if (!ended) {
      await steps.return(undefined as never);
      await runManager?.handleChainError(new Error(`${options.runName} was stopped before it ended.`));
    }
  }
}
