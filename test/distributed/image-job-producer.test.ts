// The image-job producer against a real redis-server: what it does when a job's outcome is not what it asked for
// (an older worker's answer, a late answer of an earlier attempt), a resumed run's superseded job, and the TTL
// refresh of an image whose job waits.
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createImageJobProducer } from '../../dist/src/distributed/image-job-producer.js';
import { createVisionModels, createVqaChain, startEvalWorker } from '../../dist/src/index.js';
import type { EvalWorker, EvalWorkerEvent, VisionModels } from '../../dist/src/index.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  for (let wait = 0; !(await condition()); wait += 1) {
    if (wait > 600) throw new Error('condition not met within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describeWithRedis('image job producer: outcomes, resumes and image TTLs', () => {
  let redis: TestRedis;
  let vision: VisionModels;
  const clients: Redis[] = [];
  const closers: (() => Promise<unknown> | unknown)[] = [];
  const connect = (): Redis => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    clients.push(client);
    return client;
  };
  /** A queue, its events (listening) and a producer for `runKey`, closed after the test. */
  const open = async (name: string, runKey: string, imageTtlSeconds = 600) => {
    const queue = new Queue(name, { connection: connect(), prefix: 'vqa-llm' });
    const events = new QueueEvents(name, { connection: connect(), prefix: 'vqa-llm' });
    await events.waitUntilReady();
    const client = connect();
    const producer = createImageJobProducer({ queue, events, client, location: { prefix: 'vqa-llm', name }, runKey, imageTtlSeconds, sweepMs: 200 });
    closers.push(
      () => producer.close(),
      () => events.close(),
      () => queue.close(),
    );
    return { queue, events, client, producer };
  };
  const startWorker = (name: string, events: EvalWorkerEvent[]): Promise<EvalWorker> =>
    startEvalWorker({ queue: `${redis.url}?queue=${name}`, chain: createVqaChain({ vision, llm: 'none' }), lockDurationMs: 3_000, name: 'in-process', onEvent: (event) => events.push(event) });

  beforeAll(async () => {
    redis = await startRedis();
    vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    for (const client of clients) client.disconnect();
    await vision?.dispose();
    await redis?.stop();
  });

  it('should fail a job that a worker older than image jobs completed, instead of waiting forever', { timeout: 60_000 }, async () => {
    const { producer } = await open('old-worker', 'rold');
    // What a worker before image jobs returns for one: the job read as one question without an image path.
    const old = new Worker('old-worker', async () => ({ worker: 'old-worker', error: { name: 'TypeError', message: 'The "path" argument must be of type string.' } }), {
      connection: connect(),
      prefix: 'vqa-llm',
    });
    closers.push(() => old.close());
    const questions = [{ id: 1, question: 'What is it?' }];
    await expect(producer.submit({ key: 'truck', image: fixtureImage('truck.jpg'), questions })).rejects.toMatchObject({ name: 'QueueJobError', reason: 'job_failed' });
    // A resumed run finds the job completed that way: the same failure, from the job itself rather than an event.
    const resumed = await open('old-worker', 'rold');
    await expect(resumed.producer.submit({ key: 'truck', image: fixtureImage('truck.jpg'), questions })).rejects.toMatchObject({ name: 'QueueJobError', reason: 'job_failed' });
  });

  it('should not take an answer of another attempt at the same job id for the one awaited', { timeout: 60_000 }, async () => {
    const { queue, producer } = await open('stale', 'rstale');
    const answered = producer.submit({ key: 'truck', image: fixtureImage('truck.jpg'), questions: [{ id: 'a', question: 'What is it?' }] });
    await until(async () => (await queue.getJobCounts('waiting')).waiting === 1);
    const [job] = await queue.getJobs(['waiting']);
    // A completion of an earlier attempt at this id, arriving late (as BullMQ writes it to the queue's event stream),
    // before this attempt's own: a retry reuses the id.
    const stale = { worker: 'stale-worker', attempt: 'an-earlier-attempt', results: [{ id: 'a', worker: 'stale-worker', error: { name: 'InvalidImageError', code: 'not_found', message: 'gone' } }] };
    await connect().xadd('vqa-llm:stale:events', '*', 'event', 'completed', 'jobId', job!.id!, 'returnvalue', JSON.stringify(stale), 'prev', 'active');
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker('stale', events);
    closers.push(() => worker.close());
    const result = await answered;
    expect(result.worker).toBe('in-process');
    expect(result.results[0]!.answer?.candidates.length).toBeGreaterThan(0);
    expect(job!.data.attempt).toEqual(expect.any(String));
    expect(result.attempt).toBe(job!.data.attempt);
  });

  it('should remove a resumed run\'s job that holds other questions when it adds one for those left', { timeout: 60_000 }, async () => {
    const first = await open('superseded', 'rsup');
    const stop = new AbortController();
    const image = fixtureImage('truck.jpg');
    const asked = first.producer.submit({ key: 'truck', image, questions: [1, 2].map((id) => ({ id, question: `q${id}` })), signal: stop.signal });
    await until(async () => (await first.queue.getJobCounts('waiting')).waiting === 1);
    stop.abort();
    await expect(asked).rejects.toMatchObject({ reason: 'interrupted' });
    const [old] = await first.queue.getJobs(['waiting']);

    // Resumed with more questions (a larger --limit): a job of its own for them, and the old one goes.
    const resumed = await open('superseded', 'rsup');
    const stopAgain = new AbortController();
    const again = resumed.producer.submit({ key: 'truck', image, questions: [1, 2, 3].map((id) => ({ id, question: `q${id}` })), signal: stopAgain.signal });
    await until(async () => (await resumed.queue.getJobs(['waiting'])).some((job) => job.id !== old!.id));
    expect(await resumed.queue.getJob(old!.id!)).toBeUndefined();
    const [left] = await resumed.queue.getJobs(['waiting']);
    expect(left!.data.questions.map((question: { id: number }) => question.id)).toEqual([1, 2, 3]);
    expect(await resumed.queue.getJobCounts('waiting')).toEqual({ waiting: 1 });
    stopAgain.abort();
    await expect(again).rejects.toMatchObject({ reason: 'interrupted' });
  });

  it('should keep an awaited image in Redis past its TTL while its job waits, and answer it without a retry', { timeout: 60_000 }, async () => {
    const { client, producer } = await open('ttl', 'rttl', 2);
    const answered = producer.submit({ key: 'truck', image: fixtureImage('truck.jpg'), questions: [{ id: 'a', question: 'What is it?' }] });
    await until(async () => (await client.keys('vqa-llm:ttl:image:rttl:*')).length === 1);
    const [key] = await client.keys('vqa-llm:ttl:image:rttl:*');
    // No worker for two and a half TTLs: only the producer's refresh keeps the bytes.
    const present: number[] = [];
    for (let sample = 0; sample < 50; sample += 1) {
      present.push(await client.exists(key!));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(present.every((exists) => exists === 1)).toBe(true);
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker('ttl', events);
    closers.push(() => worker.close());
    const result = await answered;
    expect(result.results[0]!.answer?.candidates.length).toBeGreaterThan(0);
    // Found at the first try: never answered as unavailable.
    await until(() => events.some((event) => event.type === 'finished'));
    expect(events.map((event) => event.type)).toEqual(['started', 'finished']);
  });
});
