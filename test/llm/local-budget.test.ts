import { readFile } from 'node:fs/promises';
import { HumanMessage } from '@langchain/core/messages';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalChatModel, type ChatLocalLlama } from '../../dist/src/llm/index.js';
import { CoreBudget, sharedCoreBudget, type CoreBudgetEvent } from '../../dist/src/runtime/core-budget.js';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';
import { describeGguf, ggufPath, TEST_MODEL_OPTIONS } from './local-gguf.js';

const hello = [new HumanMessage('Say hello.')];

/** Every event of the budget as `type:label`, and a check on each that the budget never hands out more than it has. */
function record(budget: CoreBudget): { log: string[]; most: () => number; stop: () => void } {
  const log: string[] = [];
  let held = budget.cores - budget.available;
  let most = held;
  const stop = budget.observe((event: CoreBudgetEvent) => {
    log.push(`${event.type}:${event.label ?? '?'}`);
    if (event.type === 'grant') held += event.cores;
    if (event.type === 'release') held -= event.cores;
    most = Math.max(most, held);
    // Told afterwards through the log: an assertion thrown here would fail whoever called the budget.
    if (event.available < 0 || event.available !== budget.cores - held) log.push(`inconsistent: ${event.available} available, ${held} held`);
  });
  return { log, most: () => most, stop };
}

/** Resolves on the budget's first event of `type` for `label`, running `then` synchronously at that moment. */
function on(budget: CoreBudget, type: CoreBudgetEvent['type'], label: string, then: () => void = () => undefined): Promise<void> {
  return new Promise((resolve) => {
    const stop = budget.observe((event) => {
      if (event.type !== type || event.label !== label) return;
      stop();
      then();
      resolve();
    });
  });
}

describeGguf('the embedded LLM drawing its threads from a core budget (real node-llama-cpp)', () => {
  let budget: CoreBudget;
  let llm: ChatLocalLlama;

  beforeAll(async () => {
    // One core: the LLM's one thread takes all of it, so any other run must wait for the generation to end.
    budget = new CoreBudget({ cores: 1 });
    llm = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, maxTokens: 12, coreBudget: budget });
    await llm.load();
  });
  afterAll(async () => {
    await llm?.dispose();
  });

  it('should hold its cores while it generates, so that a run queued meanwhile starts only after it', async () => {
    const { log, stop } = record(budget);
    let other: Promise<(() => void) | undefined> | undefined;
    let availableWhileGenerating = -1;
    // Queued at the moment the LLM is granted its core, i.e. before llama.cpp has evaluated anything.
    const granted = on(budget, 'grant', 'llm', () => {
      availableWhileGenerating = budget.available;
      other = budget.acquire({ cores: 1, label: 'vision' });
    });
    const reply = await llm.invoke(hello);
    await granted;
    (await other!)!();
    stop();
    expect(reply.usage_metadata?.output_tokens).toBeGreaterThan(0);
    expect(availableWhileGenerating).toBe(0);
    expect(log).toEqual(['queue:llm', 'grant:llm', 'queue:vision', 'release:llm', 'grant:vision', 'release:vision']);
    expect(budget.available).toBe(1);
  });

  it('should give its cores back when the caller aborts mid-generation, to the run waiting for them', async () => {
    const { log, stop } = record(budget);
    const controller = new AbortController();
    const reason = new Error('caller gave up');
    let other: Promise<(() => void) | undefined> | undefined;
    const granted = on(budget, 'grant', 'llm', () => {
      other = budget.acquire({ cores: 1, label: 'vision' });
    });
    const reading = (async () => {
      for await (const chunk of await llm.stream([new HumanMessage('Tell me a long story.')], { signal: controller.signal })) {
        if (chunk.text !== '') controller.abort(reason);
      }
    })();
    await expect(reading).rejects.toBe(reason);
    await granted;
    const release = await other!;
    expect(release).toBeTypeOf('function');
    expect(budget.available).toBe(0);
    release!();
    stop();
    expect(log).toEqual(['queue:llm', 'grant:llm', 'queue:vision', 'release:llm', 'grant:vision', 'release:vision']);
    expect(budget.available).toBe(1);
  });

  it('should leave the queue without taking cores when aborted while it waits for them, and answer the next call', async () => {
    const hold = (await budget.acquire({ cores: 1, label: 'vision' }))!;
    const { log, stop } = record(budget);
    const controller = new AbortController();
    const reason = new Error('no longer needed');
    const queued = on(budget, 'queue', 'llm', () => controller.abort(reason));
    await expect(llm.invoke(hello, { signal: controller.signal })).rejects.toBe(reason);
    await queued;
    expect(budget.waiting).toBe(0);
    hold();
    // Its sequence went back too: a model of two sequences answers at once.
    const reply = await llm.invoke(hello);
    stop();
    expect(reply.usage_metadata?.output_tokens).toBeGreaterThan(0);
    expect(log).toEqual(['queue:llm', 'cancel:llm', 'release:vision', 'queue:llm', 'grant:llm', 'release:llm']);
    expect(budget.available).toBe(1);
  });

  it('should let two generations at once share one hold (its sequences share the context threads)', async () => {
    const { log, most, stop } = record(budget);
    const replies = await Promise.all([llm.invoke(hello), llm.invoke([new HumanMessage('Say goodbye.')])]);
    stop();
    for (const reply of replies) expect(reply.usage_metadata?.output_tokens).toBeGreaterThan(0);
    expect(log.filter((entry) => entry === 'grant:llm')).toHaveLength(1);
    expect(most()).toBe(1);
    expect(budget.available).toBe(1);
  });

  it('should queue a generation behind a run that is waiting, rather than join the hold ahead of it', async () => {
    const { log, stop } = record(budget);
    let second: Promise<unknown> | undefined;
    let other: Promise<(() => void) | undefined> | undefined;
    const granted = on(budget, 'grant', 'llm', () => {
      other = budget.acquire({ cores: 1, label: 'vision' });
      second = llm.invoke([new HumanMessage('Say goodbye.')]);
    });
    await llm.invoke(hello);
    await granted;
    const release = (await other!)!;
    // The vision run holds the core now; the second generation waits for it.
    expect(log.at(-1)).toBe('grant:vision');
    release();
    await second;
    stop();
    expect(log.filter((entry) => entry.endsWith(':llm') && entry.startsWith('grant'))).toHaveLength(2);
    expect(log.indexOf('grant:vision')).toBeLessThan(log.lastIndexOf('grant:llm'));
    expect(budget.available).toBe(1);
  });
});

describeGguf('the embedded LLM and the vision models in one process (real node-llama-cpp and onnxruntime)', () => {
  it('should start a vision run asked for during a generation only when the generation has ended', async () => {
    const budget = new CoreBudget({ cores: 2 });
    const vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', coreBudget: budget });
    const llm = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, maxTokens: 64, coreBudget: budget });
    try {
      await llm.load();
      expect(vision.coreBudget).toBe(budget);
      // Decoded beforehand: the VQA run then asks for its cores within the same turn of the event loop.
      const image = await vision.loadImage(await readFile(fixtureImage('fishing.jpg')));
      const { log, most, stop } = record(budget);
      let answers: ReturnType<typeof vision.candidates> | undefined;
      // The VQA run needs both cores (its graphs' threads); the LLM's one thread holds one of them.
      const granted = on(budget, 'grant', 'llm', () => {
        answers = vision.candidates(image, "What is in the man's hand?", { topK: 3 });
      });
      await llm.invoke([new HumanMessage('Tell me a long story.')]);
      await granted;
      const result = await answers!;
      stop();
      expect(result.candidates).toHaveLength(3);
      expect(log.indexOf('release:llm')).toBeLessThan(log.indexOf('grant:vqa'));
      expect(log.indexOf('queue:vqa')).toBeLessThan(log.indexOf('release:llm'));
      expect(most()).toBeLessThanOrEqual(2);
    } finally {
      await llm.dispose();
      await vision.dispose();
    }
  });

  it('should draw from the process budget by default, as the vision models do, and from none with coreBudget false', async () => {
    const byDefault = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS });
    const none = createLocalChatModel({ model: ggufPath('tiny.gguf'), ...TEST_MODEL_OPTIONS, coreBudget: false });
    try {
      expect(byDefault.coreBudget).toBe(sharedCoreBudget());
      expect(none.coreBudget).toBeUndefined();
      const { log, stop } = record(sharedCoreBudget());
      await none.invoke(hello);
      expect(log).toEqual([]);
      await byDefault.invoke(hello);
      stop();
      expect(log).toEqual(['queue:llm', 'grant:llm', 'release:llm']);
    } finally {
      await Promise.all([byDefault.dispose(), none.dispose()]);
    }
  });
});

describe('createLocalChatModel with a core budget', () => {
  it('should refuse a coreBudget that is not a CoreBudget, naming the option', () => {
    expect(() => createLocalChatModel({ model: 'x.gguf', coreBudget: { cores: 2 } as unknown as CoreBudget })).toThrow(/coreBudget must be a CoreBudget/);
  });
});

describeGguf('the embedded LLM sizing its threads to its core budget (real node-llama-cpp)', () => {
  it('should run no more threads than the budget has cores, and by default as many', async () => {
    const narrow = createLocalChatModel({ model: ggufPath('tiny.gguf'), contextSize: 256, threads: 8, coreBudget: new CoreBudget({ cores: 1 }) });
    const fitted = createLocalChatModel({ model: ggufPath('tiny.gguf'), contextSize: 256, coreBudget: new CoreBudget({ cores: 1 }) });
    try {
      expect((await narrow.load()).threads).toBe(1);
      expect((await fitted.load()).threads).toBe(1);
    } finally {
      await Promise.all([narrow.dispose(), fitted.dispose()]);
    }
  });
});
