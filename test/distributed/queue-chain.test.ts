import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createQueueChain } from '../../dist/src/distributed/queue-chain.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

// The chain against a real queue; the worker's processor stands in for the pipeline, which the property below
// (the order in which questions reach workers) does not involve.
describeWithRedis('the queued evaluation chain', () => {
  let redis: TestRedis;
  const connections: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    connections.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    for (const client of connections) client.disconnect();
    await redis?.stop();
  });

  it('should send an image\'s next question only once its previous one is answered, other images meanwhile', async () => {
    const queue = new Queue('order', { connection: connect() });
    const events = new QueueEvents('order', { connection: connect() });
    await events.waitUntilReady();
    const running = new Map<string, number>();
    let overlapSameImage = 0;
    let mostAtOnce = 0;
    const worker = new Worker(
      'order',
      async (job) => {
        const image = job.data.image as string;
        running.set(image, (running.get(image) ?? 0) + 1);
        if (running.get(image)! > 1) overlapSameImage += 1;
        mostAtOnce = Math.max(mostAtOnce, [...running.values()].reduce((sum, count) => sum + count, 0));
        await new Promise((resolve) => setTimeout(resolve, 20));
        running.set(image, running.get(image)! - 1);
        return { worker: 'stand-in', answer: { answer: `${job.data.question}!`, candidates: [] } };
      },
      { connection: connect(), concurrency: 6 },
    );
    const chain = createQueueChain({ queue, events, runKey: 'rtest' });
    const questions = ['a.jpg', 'b.jpg', 'c.jpg'].flatMap((image) => [1, 2, 3].map((index) => ({ image, question: `${image} q${index}`, questionId: `${image}-${index}` })));
    const answers = await Promise.all(questions.map(({ image, question, questionId }) => chain.invoke({ image, question }, { metadata: { questionId } })));
    expect(answers.map((answer) => answer.answer)).toEqual(questions.map(({ question }) => `${question}!`));
    expect(overlapSameImage).toBe(0);
    expect(mostAtOnce).toBeGreaterThan(1);
    // Answers stay in Redis until released (once their records are written), then nothing is left.
    expect(await queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 9, waiting: 0, active: 0 });
    await chain.release(4);
    expect(await queue.getJobCounts('completed')).toEqual({ completed: 5 });
    await chain.release(5);
    expect(await queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 0, waiting: 0, active: 0 });
    chain.close();
    await worker.close();
    await events.close();
    await queue.close();
  });
});
