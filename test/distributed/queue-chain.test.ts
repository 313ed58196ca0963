import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createImageJobProducer } from '../../dist/src/distributed/image-job-producer.js';
import { createQueueChain } from '../../dist/src/distributed/queue-chain.js';
import { fixtureImage } from '../helpers/fixtures.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

// The chain against a real queue; the worker's processor stands in for the pipeline, which the properties below
// (how questions are grouped into jobs, when jobs and images are removed) do not involve.
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

  it('should send each image\'s questions as one job, and remove it with its image once all its answers are written', async () => {
    const queue = new Queue('order', { connection: connect() });
    const events = new QueueEvents('order', { connection: connect() });
    await events.waitUntilReady();
    const jobs: { id: string; questions: string[] }[] = [];
    const worker = new Worker(
      'order',
      async (job) => {
        const questions = job.data.questions as { id: string; question: string }[];
        jobs.push({ id: job.id!, questions: questions.map((question) => question.question) });
        await new Promise((resolve) => setTimeout(resolve, 20));
        return { worker: 'stand-in', results: questions.map((question) => ({ id: question.id, worker: 'stand-in', answer: { answer: `${question.question}!`, candidates: [] } })) };
      },
      { connection: connect(), concurrency: 6 },
    );
    const client = connect();
    const producer = createImageJobProducer({ queue, events, client, location: { prefix: 'bull', name: 'order' }, runKey: 'rtest', imageTtlSeconds: 600 });
    const plan = ['truck.jpg', 'fishing.jpg', 'synthetic.png'].flatMap((name) => [1, 2, 3].map((index) => ({ image: fixtureImage(name), question: `${name} q${index}`, questionId: `${name}-${index}` })));
    const chain = createQueueChain({ producer, plan });
    const answers = await Promise.all(plan.map(({ image, question, questionId }) => chain.invoke({ image, question }, { metadata: { questionId } })));
    expect(answers.map((answer) => answer.answer)).toEqual(plan.map(({ question }) => `${question}!`));
    expect(jobs.map((job) => job.questions).sort()).toEqual(['fishing.jpg', 'synthetic.png', 'truck.jpg'].map((name) => [1, 2, 3].map((index) => `${name} q${index}`)));

    // Answers stay in Redis until released (once their records are written), then nothing is left.
    const images = (): Promise<string[]> => client.keys('bull:order:image:*');
    expect(await queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 3, waiting: 0, active: 0 });
    expect(await images()).toHaveLength(3);
    await chain.release(4);
    // The first image's three answers and one of the second's: one job and its image go.
    expect(await queue.getJobCounts('completed')).toEqual({ completed: 2 });
    expect(await images()).toHaveLength(2);
    await chain.release(5);
    expect(await queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 0, waiting: 0, active: 0 });
    expect(await images()).toEqual([]);
    producer.close();
    await worker.close();
    await events.close();
    await queue.close();
  });

  it('should find a resumed run\'s job that holds more questions than are left, instead of asking again', async () => {
    const queue = new Queue('resume', { connection: connect() });
    const events = new QueueEvents('resume', { connection: connect() });
    await events.waitUntilReady();
    let asked = 0;
    const worker = new Worker(
      'resume',
      async (job) => {
        const questions = job.data.questions as { id: string; question: string }[];
        asked += questions.length;
        return { worker: 'stand-in', results: questions.map((question) => ({ id: question.id, worker: 'stand-in', answer: { answer: `${question.question}!`, candidates: [] } })) };
      },
      { connection: connect() },
    );
    const client = connect();
    const image = fixtureImage('truck.jpg');
    const plan = [1, 2, 3].map((index) => ({ image, question: `q${index}`, questionId: index }));
    const first = createImageJobProducer({ queue, events, client, location: { prefix: 'bull', name: 'resume' }, runKey: 'rsame', imageTtlSeconds: 600 });
    const firstChain = createQueueChain({ producer: first, plan });
    await Promise.all(plan.map(({ question, questionId }) => firstChain.invoke({ image, question }, { metadata: { questionId } })));
    first.close();
    // A producer that wrote the first answer only, then died: its rerun plans the two others.
    const second = createImageJobProducer({ queue, events, client, location: { prefix: 'bull', name: 'resume' }, runKey: 'rsame', imageTtlSeconds: 600 });
    const rest = plan.slice(1);
    const chain = createQueueChain({ producer: second, plan: rest });
    const answers = await Promise.all(rest.map(({ question, questionId }) => chain.invoke({ image, question }, { metadata: { questionId } })));
    expect(answers.map((answer) => answer.answer)).toEqual(['q2!', 'q3!']);
    expect(asked).toBe(3);
    second.close();
    await worker.close();
    await events.close();
    await queue.close();
  });
});
