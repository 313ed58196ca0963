// A worker's job that ends without the queue taking its answer (a lost lock, a forced close), and a drain bounded
// when Redis is gone: real workers, real redis-servers, a chain held at a gate so that a job is in hand.
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createVisionModels, createVqaChain, startEvalWorker, startWorkerHealth } from '../../dist/src/index.js';
import type { EvalChain, EvalWorkerEvent, VisionModels } from '../../dist/src/index.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  for (let wait = 0; !(await condition()); wait += 1) {
    if (wait > 600) throw new Error('condition not met within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * The real chain behind a gate: `holding` resolves once a question is in hand, `open()` lets it through, `answered`
 * once its inference is over (the models must not be disposed under it).
 */
function gated(inner: EvalChain): { chain: EvalChain; holding: Promise<void>; open: () => void; answered: Promise<void> } {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let entered: () => void = () => undefined;
  const holding = new Promise<void>((resolve) => (entered = resolve));
  let done: () => void = () => undefined;
  const answered = new Promise<void>((resolve) => (done = resolve));
  return {
    chain: {
      invoke: async (input, config) => {
        entered();
        await gate;
        try {
          return await inner.invoke(input, config);
        } finally {
          done();
        }
      },
    },
    holding,
    open,
    answered,
  };
}

function metric(text: string, name: string): number | undefined {
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describeWithRedis('eval worker: answers the queue does not take, and a bounded drain', () => {
  let redis: TestRedis;
  let vision: VisionModels;
  const clients: Redis[] = [];
  const connect = (url = redis.url): Redis => {
    const client = new Redis(url, { maxRetriesPerRequest: null });
    // The outage test's server goes away under it: reconnect attempts are expected, not news.
    client.on('error', () => undefined);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedis();
    vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await vision?.dispose();
    await redis?.stop();
  });

  it('should report a question abandoned, not finished, when the queue refuses its answer for a lost lock', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=lost-lock`;
    const queue = new Queue('lost-lock', { connection: connect(), prefix: 'vqa-llm' });
    const health = await startWorkerHealth({ port: 0, queue: queueUrl, defaultMetrics: false });
    const { chain, holding, open, answered } = gated(createVqaChain({ vision, llm: 'none' }));
    const events: EvalWorkerEvent[] = [];
    const worker = await startEvalWorker({
      queue: queueUrl,
      chain,
      lockDurationMs: 3_000,
      name: 'loses-lock',
      onEvent: (event) => {
        events.push(event);
        health.observe(event);
      },
    });
    const job = await queue.add('question', { questionId: 7, question: 'What is it?', image: fixtureImage('truck.jpg') });
    await holding;
    // The lock gone, as when its renewal failed long enough for another worker to take the job.
    expect(await connect().del(`vqa-llm:lost-lock:${job.id}:lock`)).toBe(1);
    open();
    await answered;
    await until(() => events.some((event) => event.type === 'abandoned'));
    expect(events.slice(0, 2).map((event) => [event.type, event.questionId, event.reason])).toEqual([
      ['started', 7, undefined],
      ['abandoned', 7, 'not_acknowledged'],
    ]);
    // The health endpoint no longer counts it in hand, nor as finished.
    const text = await (await fetch(`${health.url}/metrics`)).text();
    expect(metric(text, 'vqa_llm_worker_questions_abandoned_total')).toBe(1);
    expect(metric(text, 'vqa_llm_worker_questions_active')).toBe(0);
    expect(metric(text, 'vqa_llm_worker_jobs_active')).toBe(0);
    await worker.close();
    await health.close();
    await queue.close();
  });

  it('should end a drain that Redis cannot complete once its timeout passes, its job in hand abandoned', { timeout: 60_000 }, async () => {
    // A server of its own: this test takes it down.
    const lost = await startRedis();
    try {
      const queueUrl = `${lost.url}?queue=outage`;
      const queue = new Queue('outage', { connection: connect(lost.url), prefix: 'vqa-llm' });
      const { chain, holding, open, answered } = gated(createVqaChain({ vision, llm: 'none' }));
      const events: EvalWorkerEvent[] = [];
      const worker = await startEvalWorker({ queue: queueUrl, chain, lockDurationMs: 3_000, name: 'drains', onEvent: (event) => events.push(event) });
      await queue.add('question', { questionId: 8, question: 'What is it?', image: fixtureImage('truck.jpg') });
      await holding;
      await queue.close();
      await lost.outage();
      // SIGTERM now: the answer in hand can never be acknowledged; without the bound this waits for Redis.
      await worker.close({ timeoutMs: 1_000 });
      open();
      await answered;
      await until(() => events.some((event) => event.type === 'abandoned'));
      expect(events.map((event) => [event.type, event.reason])).toEqual([
        ['started', undefined],
        ['abandoned', 'not_acknowledged'],
      ]);
    } finally {
      await lost.stop();
    }
  });
});
