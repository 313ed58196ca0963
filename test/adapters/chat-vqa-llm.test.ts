import { existsSync } from 'node:fs';
import { AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatVqaLlm, createVqaChain, InvalidConversationError } from '../../dist/src/index.js';
import type { VisionModels } from '../../dist/src/types.js';
import { dataUrl, imageBytes, loadTinyVision, question, reply, ReportingChatModel, sentence, usage } from './helpers.js';

function withImageUrl(text = question): HumanMessage {
  return new HumanMessage({ content: [{ type: 'image_url', image_url: { url: dataUrl } }, { type: 'text', text }] });
}

// The tiny models have random weights: the caption and candidates are noise, so this checks the wiring.
describe.skipIf(!existsSync('test/fixtures/models/tiny-blip'))('ChatVqaLlm on the tiny test models', () => {
  let vision: VisionModels;

  beforeAll(async () => {
    vision = await loadTinyVision();
  });
  afterAll(async () => {
    await vision?.dispose();
  });

  it("should invoke with an image_url block and carry the result's fields in response_metadata", async () => {
    const model = new ChatVqaLlm({ vision, llm: new ReportingChatModel([reply('fishing pole', sentence)]) });
    const message = await model.invoke([new SystemMessage('You are a vision model.'), withImageUrl()]);
    expect(message.text).toBe(sentence);
    expect(message.response_metadata).toMatchObject({ source: 'llm', shortAnswer: 'fishing pole', caption: expect.any(String), finish_reason: 'stop' });
    expect(message.response_metadata.candidates).toHaveLength(5);
    expect(message.response_metadata.timings.total).toBeGreaterThan(0);
    expect(message.usage_metadata).toEqual(usage);
  });

  it('should stream the sentence with a standard image block, the metadata once, in the last chunk', async () => {
    const model = new ChatVqaLlm({ vision, llm: new ReportingChatModel([reply('fishing pole', sentence)]) });
    const image = { type: 'image' as const, data: imageBytes.toString('base64'), mimeType: 'image/jpeg' };
    const chunks: AIMessageChunk[] = [];
    for await (const chunk of await model.stream([new HumanMessage({ content: [image, { type: 'text', text: question }] })])) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(2);
    const whole = chunks.reduce((sum, chunk) => sum.concat(chunk));
    expect(whole.text).toBe(sentence);
    expect(whole.response_metadata.candidates).toHaveLength(5);
    expect(whole.response_metadata).toMatchObject({ source: 'llm', shortAnswer: 'fishing pole' });
    expect(whole.usage_metadata).toMatchObject(usage);
  });

  it('should batch conversations, follow-ups included, and say where each answer came from without an LLM', async () => {
    const model = new ChatVqaLlm({ vision, llm: 'none' });
    const [first, followUp] = await model.batch([
      [withImageUrl()],
      [withImageUrl(), new AIMessage(sentence), new HumanMessage('What is he wearing?')],
    ]);
    for (const message of [first!, followUp!]) {
      expect(message.response_metadata).toMatchObject({ source: 'vqa', fallbackReason: { code: 'llm_disabled' } });
      expect(message.usage_metadata).toEqual({ input_tokens: 0, output_tokens: 0, total_tokens: 0 });
    }
    expect(first!.response_metadata.shortAnswer).toBe(first!.response_metadata.candidates[0].answer);
    expect(first!.text.length).toBeGreaterThan(0);
  });

  it('should give the LLM the earlier turns of a follow-up question', async () => {
    const llm = new ReportingChatModel([reply('a hat', 'He is wearing a hat.')]);
    const model = new ChatVqaLlm({ vision, llm });
    const message = await model.invoke([withImageUrl(), new AIMessage(sentence), new HumanMessage('What is he wearing?')]);
    expect(message.text).toBe('He is wearing a hat.');
    const prompt = JSON.stringify(llm.prompts.at(-1)!.map((prompt) => prompt.content));
    expect(prompt).toContain(question);
    expect(prompt).toContain(sentence);
  });

  it('should read every image block form to the same answer', async () => {
    const model = new ChatVqaLlm({ chain: createVqaChain({ vision, llm: 'none' }) });
    const base64 = imageBytes.toString('base64');
    const blocks = [
      { type: 'image_url', image_url: dataUrl },
      { type: 'image', url: dataUrl },
      { type: 'image', data: new Uint8Array(imageBytes), mimeType: 'image/jpeg' },
      { type: 'image', source_type: 'base64', data: base64, mime_type: 'image/jpeg' },
      { type: 'image', source_type: 'url', url: dataUrl },
    ];
    const answers = await model.batch(blocks.map((block) => [new HumanMessage({ content: [block as never, { type: 'text', text: question }] })]));
    expect(new Set(answers.map((answer) => answer.text)).size).toBe(1);
  });

  it('should refuse a message without an image, and other content it cannot read, with a clear error', async () => {
    const model = new ChatVqaLlm({ vision, llm: 'none' });
    for (const input of [question, [new HumanMessage(question)]]) {
      const error = await model.invoke(input).catch((caught: unknown) => caught);
      expect(InvalidConversationError.isInstance(error)).toBe(true);
      expect((error as InvalidConversationError).reason).toBe('missing_image');
      expect((error as Error).message).toMatch(/no image/);
    }
    const toolMessage = await model.invoke([withImageUrl(), new ToolMessage({ content: 'sunny', tool_call_id: '1' })]).catch((caught: unknown) => caught);
    expect((toolMessage as InvalidConversationError).reason).toBe('unsupported_content');
    const fileUrl = await model.invoke([new HumanMessage({ content: [{ type: 'image_url', image_url: { url: '/etc/passwd' } }, { type: 'text', text: question }] })]).catch((caught: unknown) => caught);
    expect((fileUrl as Error).message).toMatch(/file paths are not read/);
  });

  it('should stop at an aborted signal', async () => {
    const model = new ChatVqaLlm({ vision, llm: new ReportingChatModel([reply('fishing pole', sentence)], { sleep: 20 }) });
    const error = await model.invoke([withImageUrl()], { signal: AbortSignal.abort() }).catch((caught: unknown) => caught);
    expect((error as Error).name).toMatch(/Abort/);
  });
});
