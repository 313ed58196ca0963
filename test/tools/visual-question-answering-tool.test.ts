import { AIMessage, ToolMessage } from '@langchain/core/messages';
import { fakeModel } from '@langchain/core/testing';
import { tool } from '@langchain/core/tools';
import { FakeListChatModel } from '@langchain/core/utils/testing';
import { createAgent } from 'langchain';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { createVisualQuestionAnsweringTool } from '../../dist/src/tools/visual-question-answering-tool.js';
import { FakeVision, reply } from '../chains/test-doubles.js';
import { fixtureImage } from '../helpers/fixtures.js';

const sentence = 'The man in the hat is holding a fishing pole.';

function vqaTool(options: { allowFiles?: boolean; allowUrls?: boolean } = {}) {
  const llm = new FakeListChatModel({ responses: [reply('fishing pole', sentence)] });
  return createVisualQuestionAnsweringTool({ chain: { vision: new FakeVision(), llm }, ...options });
}

describe('createVisualQuestionAnsweringTool', () => {
  it('should answer a question about a local image with a compact JSON summary', async () => {
    const content = await vqaTool().invoke({ image: fixtureImage('fishing.jpg'), question: "What is in the man's hand?" });
    expect(JSON.parse(content as string)).toMatchObject({ answer: sentence, shortAnswer: 'fishing pole', source: 'llm', topCandidates: ['fish (0.62)', 'fishing pole (0.21)', 'rope (0.05)'] });
  });

  it('should put the full result in the tool message artifact when called with a tool call', async () => {
    const message = (await vqaTool().invoke({ type: 'tool_call', id: 'call-1', name: 'visual_question_answering', args: { image: fixtureImage('fishing.jpg'), question: 'What?' } })) as ToolMessage;
    expect(message).toBeInstanceOf(ToolMessage);
    expect(message.artifact).toMatchObject({ answer: sentence, caption: 'a man in a hat sitting on a boat', candidates: expect.any(Array) });
  });

  it('should reject input that does not match the schema, naming the field', async () => {
    await expect(vqaTool().invoke({ image: fixtureImage('fishing.jpg') } as never)).rejects.toThrow(/question/);
    await expect(vqaTool().invoke({ image: '', question: 'What?' })).rejects.toThrow(/image/);
  });

  it('should refuse image URLs unless allowed, and files when files are off', async () => {
    await expect(vqaTool().invoke({ image: 'http://169.254.169.254/latest', question: 'What?' })).rejects.toMatchObject({ name: 'InvalidImageError', reason: 'url_refused' });
    await expect(vqaTool({ allowFiles: false }).invoke({ image: fixtureImage('fishing.jpg'), question: 'What?' })).rejects.toMatchObject({ reason: 'url_refused' });
  });

  it('should serve an agent beside another tool', async () => {
    const multiply = tool(async ({ a, b }: { a: number; b: number }) => String(a * b), {
      name: 'multiply',
      description: 'Multiplies two numbers.',
      schema: z.object({ a: z.number(), b: z.number() }),
    });
    const model = fakeModel()
      .respondWithTools([{ name: 'visual_question_answering', args: { image: fixtureImage('fishing.jpg'), question: 'How many fish?' }, id: 'call-1' }])
      .respondWithTools([{ name: 'multiply', args: { a: 2, b: 3 }, id: 'call-2' }])
      .respond(new AIMessage('Two fish, times three, is 6.'));
    const agent = createAgent({ model, tools: [vqaTool(), multiply] });
    const { messages } = await agent.invoke({ messages: [{ role: 'user', content: 'How many fish are in the photo, times 3?' }] });
    const toolMessages = messages.filter((message) => ToolMessage.isInstance(message)) as ToolMessage[];
    expect(toolMessages.map((message) => message.name)).toEqual(['visual_question_answering', 'multiply']);
    expect(JSON.parse(toolMessages[0]!.content as string).answer).toBe(sentence);
    expect(toolMessages[1]!.content).toBe('6');
    expect(messages.at(-1)!.content).toBe('Two fish, times three, is 6.');
  });
});
