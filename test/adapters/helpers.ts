// Shared by the adapter tests: the tiny vision models, the fixture image, and a fake chat model that records its
// prompts and reports token usage as a real endpoint does.
import { readFileSync } from 'node:fs';
import type { CallbackManagerForLLMRun } from '@langchain/core/callbacks/manager';
import { AIMessageChunk, type BaseMessage } from '@langchain/core/messages';
import { ChatGenerationChunk } from '@langchain/core/outputs';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import type { VisionModels } from '../../dist/src/types.js';

export const imagePath = 'test/fixtures/images/fishing.jpg';
export const imageBytes = readFileSync(imagePath);
export const dataUrl = `data:image/jpeg;base64,${imageBytes.toString('base64')}`;
export const question = "What is in the man's hand?";
export const sentence = 'The man in the hat is holding a fishing pole.';
export const usage = { input_tokens: 321, output_tokens: 17, total_tokens: 338 };

export function reply(shortAnswer: string, answer: string): string {
  return JSON.stringify({ shortAnswer, answer });
}

export function loadTinyVision(): Promise<VisionModels> {
  return createVisionModels({ modelsDir: 'test/fixtures/models', captionModel: 'tiny-blip', vqaModel: 'tiny-vle', threads: 1 });
}

/** A FakeListChatModel that keeps every prompt and, like an endpoint asked for usage, ends its stream with the counts. */
export class ReportingChatModel extends FakeListChatModel {
  readonly prompts: BaseMessage[][] = [];
  /** How many streams were stopped before their end (by an abort). */
  stopped = 0;

  constructor(responses: string[], options: { sleep?: number } = {}) {
    super({ responses, ...options });
  }

  override async *_streamResponseChunks(messages: BaseMessage[], options: this['ParsedCallOptions'], runManager?: CallbackManagerForLLMRun): AsyncGenerator<ChatGenerationChunk> {
    this.prompts.push(messages);
    let finished = false;
    try {
      yield* super._streamResponseChunks(messages, options, runManager);
      options.signal?.throwIfAborted();
      yield new ChatGenerationChunk({ text: '', message: new AIMessageChunk({ content: '', usage_metadata: usage }) });
      finished = true;
    } finally {
      if (!finished) this.stopped += 1;
    }
  }
}
