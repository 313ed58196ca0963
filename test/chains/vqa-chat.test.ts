import { describe, expect, it } from 'vitest';
import { createVqaChat, VqaChatSession } from '../../dist/chains/vqa-chat.js';
import { FakeVision, RecordingChatModel, reply, RunRecorder } from './test-doubles.js';

describe('createVqaChat', () => {
  it('should return the next history and reuse the image cache on a follow-up', async () => {
    const llm = new RecordingChatModel({ responses: [reply('4', 'There are four dogs.'), reply('pink', 'Their tongues are pink.')] });
    const chat = createVqaChat({ vision: new FakeVision(), llm });
    const first = await chat.invoke({ image: 'dogs.jpg', question: 'How many dogs are there?' });
    expect(first.history).toEqual([{ question: 'How many dogs are there?', shortAnswer: '4', answer: 'There are four dogs.' }]);
    const second = await chat.invoke({ image: 'dogs.jpg', question: 'What color are their tongues?', history: first.history });
    expect(second.cached).toEqual({ caption: true, imageEmbeddings: true });
    expect(second.history).toHaveLength(2);
    const sent = llm.prompts[1]!.map((message) => `${message.getType()}: ${message.text}`);
    expect(sent[1]).toBe('human: <question>How many dogs are there?</question>');
    expect(sent[2]).toBe('ai: {"shortAnswer":"4","answer":"There are four dogs."}');
  });

  it('should pass at most maxHistoryTurns earlier turns to the LLM', async () => {
    const llm = new RecordingChatModel({ responses: [reply('x', 'X.')] });
    const chat = createVqaChat({ vision: new FakeVision(), llm, maxHistoryTurns: 2 });
    const history = [1, 2, 3, 4].map((turn) => ({ question: `q${turn}?`, shortAnswer: `a${turn}`, answer: `A${turn}.` }));
    const result = await chat.invoke({ image: 'dogs.jpg', question: 'q5?', history });
    // system + 2 turns x (human, ai) + the question
    expect(llm.prompts[0]).toHaveLength(6);
    expect(llm.prompts[0]![1]!.text).toContain('q3?');
    expect(result.history.map((turn) => turn.question)).toEqual(['q4?', 'q5?']);
  });
});

describe('VqaChat runs', () => {
  it('should run the chain as its child, in invoke and in stream', async () => {
    const recorder = new RunRecorder();
    const chat = createVqaChat({ vision: new FakeVision(), llm: new RecordingChatModel({ responses: [reply('4', 'There are four dogs.'), reply('4', 'Four.')] }) });
    const result = await chat.invoke({ image: 'dogs.jpg', question: 'How many dogs are there?' }, { callbacks: [recorder] });
    expect(recorder.runs[0]).toMatchObject({ name: 'VqaChat', outputs: { history: result.history } });
    expect(recorder.lineage()).toEqual(expect.arrayContaining(['VqaChat < (root)', 'VqaChain < VqaChat', 'VqaAnswer < VqaChain', 'RecordingChatModel < VqaAnswer']));
    const streamed = new RunRecorder();
    for await (const _chunk of await chat.stream({ image: 'dogs.jpg', question: 'And now?' }, { callbacks: [streamed] })) void _chunk;
    expect(streamed.lineage()).toContain('VqaChain < VqaChat');
  });
});

describe('VqaChatSession', () => {
  it('should keep the conversation, stream turns, and forget it on reset', async () => {
    const llm = new RecordingChatModel({ responses: [reply('4', 'There are four dogs.'), reply('husky', 'They are huskies.')] });
    const session = new VqaChatSession(createVqaChat({ vision: new FakeVision(), llm }), 'dogs.jpg');
    await session.ask('How many dogs are there?');
    const types: string[] = [];
    for await (const chunk of session.stream('What breed are they?')) types.push(chunk.type);
    expect(types[0]).toBe('vision');
    expect(types.at(-1)).toBe('result');
    expect(session.history.map((turn) => turn.shortAnswer)).toEqual(['4', 'husky']);
    session.reset();
    expect(session.history).toEqual([]);
  });
});
