// Test doubles for chain tests: a VisionModels that records calls, and chat models that record prompts or fail.
import { BaseChatModel } from '@langchain/core/language_models/chat_models';
import type { BaseMessage } from '@langchain/core/messages';
import type { ChatResult } from '@langchain/core/outputs';
import { BaseTracer, type Run } from '@langchain/core/tracers/base';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import type { Candidate, CaptionResult, CandidatesResult, ImageInput, LoadedImage, VisionModels } from '../../src/types.js';

export interface FakeVisionOptions {
  caption?: string;
  candidates?: Candidate[];
  /** Milliseconds each model call waits, so that concurrency can be observed. */
  delayMs?: number;
  failWith?: Error;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    }, { once: true });
  });
}

/** A VisionModels double: fixed outputs, an event log, and the number of calls in flight. */
export class FakeVision implements VisionModels {
  readonly models = { caption: 'fake-blip', vqa: 'fake-vle' };
  readonly events: string[] = [];
  readonly calls = { loadImage: 0, caption: 0, candidates: 0 };
  inFlight = 0;
  maxInFlight = 0;
  private readonly seen = new Set<string>();

  constructor(private readonly options: FakeVisionOptions = {}) {}

  async loadImage(input: ImageInput, options?: { signal?: AbortSignal }): Promise<LoadedImage> {
    this.calls.loadImage += 1;
    options?.signal?.throwIfAborted();
    if (typeof input === 'object' && 'kind' in input) return input;
    const name = typeof input === 'string' ? input : 'bytes';
    return { kind: 'loaded-image', data: new Uint8Array(3), width: 1, height: 1, format: 'png', hash: `hash-of-${name}`, byteLength: 3 };
  }

  async caption(image: ImageInput, options?: { signal?: AbortSignal }): Promise<CaptionResult> {
    this.calls.caption += 1;
    const loaded = await this.loadImage(image);
    return this.track('caption', options?.signal, () => {
      const cached = this.seen.has(`caption:${loaded.hash}`);
      this.seen.add(`caption:${loaded.hash}`);
      return { caption: this.options.caption ?? 'a man in a hat sitting on a boat', tokenIds: [], cached, timings: { decoder: 1 }, model: 'fake-blip' };
    });
  }

  async candidates(image: ImageInput, _question: string, options?: { topK?: number; signal?: AbortSignal }): Promise<CandidatesResult> {
    this.calls.candidates += 1;
    const loaded = await this.loadImage(image);
    return this.track('candidates', options?.signal, () => {
      const imageCached = this.seen.has(`vqa:${loaded.hash}`);
      this.seen.add(`vqa:${loaded.hash}`);
      const all = this.options.candidates ?? [
        { answer: 'fish', score: 0.62 },
        { answer: 'fishing pole', score: 0.21 },
        { answer: 'rope', score: 0.05 },
      ];
      return { candidates: all.slice(0, options?.topK ?? 5), imageCached, timings: { fusion: 1 }, model: 'fake-vle' };
    });
  }

  async dispose(): Promise<void> {}

  private async track<T>(name: string, signal: AbortSignal | undefined, produce: () => T): Promise<T> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    this.events.push(`${name}:start`);
    try {
      await sleep(this.options.delayMs ?? 0, signal);
      if (this.options.failWith) throw this.options.failWith;
      return produce();
    } finally {
      this.inFlight -= 1;
      this.events.push(`${name}:end`);
    }
  }
}

/** A FakeListChatModel that keeps every prompt it was sent. */
export class RecordingChatModel extends FakeListChatModel {
  readonly prompts: BaseMessage[][] = [];

  override async *_streamResponseChunks(messages: BaseMessage[], options: this['ParsedCallOptions'], runManager?: Parameters<FakeListChatModel['_streamResponseChunks']>[2]) {
    this.prompts.push(messages);
    yield* super._streamResponseChunks(messages, options, runManager);
  }

  override async _generate(messages: BaseMessage[], options?: this['ParsedCallOptions'], runManager?: Parameters<FakeListChatModel['_generate']>[2]): Promise<ChatResult> {
    this.prompts.push(messages);
    return super._generate(messages, options, runManager);
  }
}

/** A chat model whose every call throws the given error. */
export class ThrowingChatModel extends BaseChatModel {
  constructor(private readonly error: Error) {
    super({});
  }

  _llmType(): string {
    return 'throwing';
  }

  async _generate(): Promise<ChatResult> {
    throw this.error;
  }
}

/** A good reply in the format the prompt asks for. */
export function reply(shortAnswer: string, answer: string): string {
  return JSON.stringify({ shortAnswer, answer });
}

/** A tracer that keeps every run it sees (name, type, parent), as LangSmith would record them. */
export class RunRecorder extends BaseTracer {
  name = 'run_recorder';
  readonly runs: Run[] = [];

  protected async persistRun(): Promise<void> {}

  override onRunCreate(run: Run): void {
    this.runs.push(run);
  }

  /** The run's name and its parent's, e.g. `VqaAnswer < VqaChain`. */
  lineage(): string[] {
    const byId = new Map(this.runs.map((run) => [run.id, run]));
    return this.runs.map((run) => `${run.name} < ${(run.parent_run_id && byId.get(run.parent_run_id)?.name) ?? '(root)'}`);
  }
}
