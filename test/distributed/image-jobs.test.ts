import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { imageStoreKey } from '../../dist/src/distributed/image-store.js';
import { createImageJobProducer } from '../../dist/src/distributed/image-job-producer.js';
import { createVisionModels, createVqaChain, loadJsonlDataset, runEval, runQueuedEval, runQueuedQuestions, startEvalWorker } from '../../dist/src/index.js';
import type { EvalChain, EvalWorker, EvalWorkerEvent, QueuedAnswer, QueuedQuestion, VisionModels } from '../../dist/src/index.js';
import { fixtureImage, modelsDir, root } from '../helpers/fixtures.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

const fixtures = join(root, 'test', 'fixtures', 'eval');
const outputDir = join(root, 'test', 'output', 'distributed', 'image-jobs');
const questionLines = readFileSync(join(fixtures, 'questions.jsonl'), 'utf8').trim().split('\n');
const imageCount = new Set(questionLines.map((line) => (JSON.parse(line) as { image: string }).image)).size;

/** The fixture dataset in a folder of its own, which a test may delete once the producer has read it. */
function copyDataset(name: string): string {
  const dir = join(outputDir, `${name}-${randomBytes(4).toString('hex')}`);
  mkdirSync(dir, { recursive: true });
  for (const line of questionLines) copyFileSync(join(fixtures, (JSON.parse(line) as { image: string }).image), join(dir, (JSON.parse(line) as { image: string }).image));
  writeFileSync(join(dir, 'questions.jsonl'), `${questionLines.join('\n')}\n`);
  return dir;
}

/** Means are summed in the order answers arrive: equal to 12 digits, not to the last bit. */
function rounded(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, entry: unknown) => (typeof entry === 'number' ? Number(entry.toPrecision(12)) : entry)));
}

/** The fixture's questions dealt round-robin over its images, so that no two questions about one image are adjacent. */
function interleaved(): string[] {
  const byImage = new Map<string, string[]>();
  for (const line of questionLines) {
    const { image } = JSON.parse(line) as { image: string };
    byImage.set(image, [...(byImage.get(image) ?? []), line]);
  }
  const lists = [...byImage.values()];
  const dealt: string[] = [];
  for (let round = 0; dealt.length < questionLines.length; round += 1) for (const list of lists) if (list[round]) dealt.push(list[round]!);
  return dealt;
}

async function until(condition: () => Promise<boolean> | boolean): Promise<void> {
  for (let wait = 0; !(await condition()); wait += 1) {
    if (wait > 600) throw new Error('condition not met within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// In one process: a real worker (tiny models, no LLM) and the real producers against a real redis-server.
describeWithRedis('image jobs: an image\'s bytes through Redis, its questions as one job', () => {
  let redis: TestRedis;
  let vision: VisionModels;
  const clients: Redis[] = [];
  const connect = (): Redis => {
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    clients.push(client);
    return client;
  };
  const startWorker = async (queue: string, events: EvalWorkerEvent[]): Promise<EvalWorker> =>
    startEvalWorker({ queue, chain: createVqaChain({ vision, llm: 'none' }), concurrency: 2, lockDurationMs: 3_000, name: 'in-process', onEvent: (event) => events.push(event) });

  beforeAll(async () => {
    mkdirSync(outputDir, { recursive: true });
    redis = await startRedis();
    vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  });
  afterAll(async () => {
    for (const client of clients) client.disconnect();
    await vision?.dispose();
    await redis?.stop();
  });

  it('should answer an evaluation whose images the workers cannot read, one job per image, as a single process does', { timeout: 120_000 }, async () => {
    const queueUrl = `${redis.url}?queue=no-shared-path`;
    const dir = copyDataset('no-shared-path');
    const dataset = await loadJsonlDataset(join(dir, 'questions.jsonl'));
    const single = await runEval({ dataset, chain: createVqaChain({ vision, llm: 'none' }), output: join(dir, 'single.jsonl'), fresh: true });

    // No worker yet: the producer reads each image, puts its bytes in Redis and queues one job per image.
    const output = join(outputDir, 'no-shared-path.jsonl');
    const queued = runQueuedEval({ dataset, queue: queueUrl, output, fresh: true });
    const queue = new Queue('no-shared-path', { connection: connect(), prefix: 'vqa-llm' });
    await until(async () => (await queue.getJobCounts('waiting')).waiting === imageCount);
    // The dataset disappears: the worker can only answer from Redis.
    rmSync(dir, { recursive: true, force: true });
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker(queueUrl, events);
    const { summary } = await queued;

    const records = readFileSync(output, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { questionId: number; error?: unknown; vqa?: { shortAnswer: string } });
    expect(records.filter((record) => record.error)).toEqual([]);
    expect(records.map((record) => record.questionId).sort((left, right) => left - right)).toEqual(dataset.questions.map((question) => question.questionId));
    expect(rounded(summary.arms)).toEqual(rounded(single.summary.arms));
    // Each question started and finished once, in one job per image.
    const started = events.filter((event) => event.type === 'started');
    expect(started.map((event) => event.questionId).sort((left, right) => Number(left) - Number(right))).toEqual(dataset.questions.map((question) => question.questionId));
    expect(new Set(started.map((event) => event.jobId)).size).toBe(imageCount);
    await until(() => worker.processed === dataset.questions.length);
    expect(events.filter((event) => event.type === 'finished')).toHaveLength(dataset.questions.length);
    // Once the answers are written, the run leaves neither jobs nor images behind.
    await until(async () => (await connect().keys('vqa-llm:no-shared-path:image:*')).length === 0);
    expect(await queue.getJobCounts('completed', 'waiting', 'active')).toEqual({ completed: 0, waiting: 0, active: 0 });
    await worker.close();
    await queue.close();
  });

  it('should answer a job whose image is gone or damaged with that error for each question, without a retry', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=unavailable`;
    const queue = new Queue('unavailable', { connection: connect(), prefix: 'vqa-llm' });
    const queueEvents = new QueueEvents('unavailable', { connection: connect(), prefix: 'vqa-llm' });
    await queueEvents.waitUntilReady();
    const worker = await startWorker(queueUrl, []);
    const bytes = readFileSync(fixtureImage('truck.jpg'));
    const damaged = { sha256: '0'.repeat(64), size: bytes.byteLength, run: 'rtest', name: 'truck.jpg' };
    await connect().set(imageStoreKey({ prefix: 'vqa-llm', name: 'unavailable' }, damaged), bytes);
    const questions = [
      { id: 1, question: 'What is it?' },
      { id: 2, question: 'What color is it?' },
    ];
    for (const [image, reason] of [
      [{ ...damaged, sha256: 'f'.repeat(64) }, 'not_found'],
      [damaged, 'fetch_failed'],
    ] as const) {
      const job = await queue.add('image-questions', { kind: 'image-questions', image, questions });
      const result = (await job.waitUntilFinished(queueEvents)) as { imageUnavailable: { name: string; code: string }; results: { id: number; error: { name: string; code: string } }[] };
      expect(result.imageUnavailable).toMatchObject({ name: 'InvalidImageError', code: reason });
      expect(result.results.map((entry) => [entry.id, entry.error.name, entry.error.code])).toEqual([
        [1, 'InvalidImageError', reason],
        [2, 'InvalidImageError', reason],
      ]);
      // Answered, not failed: the queue does not retry it.
      expect(await queue.getJobState(job.id!)).toBe('completed');
      expect((await queue.getJob(job.id!))!.attemptsMade).toBeLessThanOrEqual(1);
    }
    await worker.close();
    await queueEvents.close();
    await queue.close();
  });

  it('should put a damaged image back and ask once more', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=put-back`;
    const location = { prefix: 'vqa-llm', name: 'put-back' };
    const queue = new Queue('put-back', { connection: connect(), prefix: 'vqa-llm' });
    const queueEvents = new QueueEvents('put-back', { connection: connect(), prefix: 'vqa-llm' });
    await queueEvents.waitUntilReady();
    const client = connect();
    const producer = createImageJobProducer({ queue, events: queueEvents, client, location, runKey: 'rput', imageTtlSeconds: 600 });
    const answered = producer.submit({ key: 'truck', image: fixtureImage('truck.jpg'), questions: [{ id: 'a', question: 'What is it?' }] });
    await until(async () => (await queue.getJobCounts('waiting')).waiting === 1);
    const [key] = await client.keys('vqa-llm:put-back:image:rput:*');
    await client.set(key!, 'not the image');
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker(queueUrl, events);
    const result = await answered;
    expect(result.results).toHaveLength(1);
    expect(result.results[0]).toMatchObject({ id: 'a', worker: 'in-process' });
    expect(result.results[0]!.answer?.candidates.length).toBeGreaterThan(0);
    // Asked twice: the damaged bytes' answer is no answer (abandoned, not finished: each question finishes once),
    // then the good bytes'. The producer may hear of the answer through Redis before the worker's own event.
    await until(() => events.length === 4);
    expect(events.map((event) => [event.type, event.reason])).toEqual([
      ['started', undefined],
      ['abandoned', 'image_unavailable'],
      ['started', undefined],
      ['finished', undefined],
    ]);
    expect(worker.processed).toBe(1);
    await producer.release('truck');
    expect(await client.exists(key!)).toBe(0);
    producer.close();
    await worker.close();
    await queueEvents.close();
    await queue.close();
  });

  it('should stream a batch\'s answers, grouping consecutive questions about one image, bad images included', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=batch`;
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker(queueUrl, events);
    const notAnImage = join(outputDir, 'not-an-image.jpg');
    writeFileSync(notAnImage, 'plain text, not a JPEG');
    const truck = readFileSync(fixtureImage('truck.jpg'));
    async function* items() {
      yield { id: 'truck-1', image: truck, question: 'What is it?' };
      yield { id: 'truck-2', image: truck, question: 'What color is it?' };
      yield { id: 'fishing', image: fixtureImage('fishing.jpg'), question: 'What is the man holding?' };
      yield { id: 'bad', image: notAnImage, question: 'What is it?' };
      yield { id: 'missing', image: join(outputDir, 'no-such-file.jpg'), question: 'What is it?' };
    }
    const answers: QueuedAnswer[] = [];
    const result = await runQueuedQuestions({ queue: queueUrl, items: items(), onResult: (answer) => void answers.push(answer) });
    expect(answers.map((answer) => answer.id).sort()).toEqual(['bad', 'fishing', 'missing', 'truck-1', 'truck-2']);
    const byId = new Map(answers.map((answer) => [answer.id, answer]));
    for (const id of ['truck-1', 'truck-2', 'fishing']) expect(byId.get(id)!.answer?.candidates.length).toBeGreaterThan(0);
    // Refused as a single process refuses them: by the worker's loader, or here before any upload.
    expect(byId.get('bad')!.error).toMatchObject({ name: 'InvalidImageError', code: 'unsupported_format' });
    expect(byId.get('missing')!.error).toMatchObject({ name: 'InvalidImageError', code: 'not_found' });
    expect(byId.get('missing')!.worker).toBeUndefined();
    expect(result).toMatchObject({ answered: 3, failed: 2, byWorker: { 'in-process': 4 } });
    // The truck's two questions in one job; three jobs reached the worker.
    const jobs = events.filter((event) => event.type === 'started').map((event) => event.jobId);
    expect(new Set(jobs).size).toBe(3);
    expect(jobs.filter((job) => job === events.find((event) => event.questionId === 'truck-1')!.jobId)).toHaveLength(2);
    expect(await connect().keys('vqa-llm:batch:image:*')).toEqual([]);
    await worker.close();
  });
  it('should remove a stopped batch\'s jobs and images', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=stopped`;
    const queue = new Queue('stopped', { connection: connect(), prefix: 'vqa-llm' });
    const controller = new AbortController();
    const items = ['truck.jpg', 'fishing.jpg', 'synthetic.png'].map((name) => ({ id: name, image: fixtureImage(name), question: 'What is it?' }));
    // No worker: the jobs wait until the batch is stopped.
    const stopped = runQueuedQuestions({ queue: queueUrl, items, onResult: () => undefined, signal: controller.signal });
    await until(async () => (await queue.getJobCounts('waiting')).waiting === 3);
    controller.abort();
    await expect(stopped).rejects.toMatchObject({ name: 'QueueJobError', reason: 'interrupted' });
    expect(await queue.getJobCounts('waiting', 'active', 'completed')).toEqual({ waiting: 0, active: 0, completed: 0 });
    expect(await connect().keys('vqa-llm:stopped:image:*')).toEqual([]);
    await queue.close();
  });

  it('should hold at most about a window of images in Redis when the dataset lists an image\'s questions apart, with a single process\'s summary', { timeout: 120_000 }, async () => {
    const queueUrl = `${redis.url}?queue=interleaved`;
    const dir = copyDataset('interleaved');
    writeFileSync(join(dir, 'interleaved.jsonl'), `${interleaved().join('\n')}\n`);
    const dataset = await loadJsonlDataset(join(dir, 'interleaved.jsonl'));
    expect(dataset.questions[0]!.image).not.toBe(dataset.questions[1]!.image);
    const single = await runEval({ dataset, chain: createVqaChain({ vision, llm: 'none' }), output: join(dir, 'single.jsonl'), fresh: true });
    const worker = await startWorker(queueUrl, []);
    const client = connect();
    // Sampled as each record is written: the KEYS goes out at once, before the next question is asked.
    const samples: Promise<number>[] = [];
    const window = 2;
    const output = join(outputDir, 'interleaved.jsonl');
    const { summary } = await runQueuedEval({
      dataset,
      queue: queueUrl,
      output,
      fresh: true,
      window,
      onProgress: () => void samples.push(client.keys('vqa-llm:interleaved:image:*').then((keys) => keys.length)),
    });
    const held = await Promise.all(samples);
    // The groups with a question in flight (at most `window`), and the one whose last record was just written,
    // its removal under way. Without grouping the window by image, all 5 images stay until the end.
    expect(Math.max(...held)).toBeLessThanOrEqual(window + 1);
    expect(rounded(summary.arms)).toEqual(rounded(single.summary.arms));
    const records = readFileSync(output, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { questionId: number; error?: unknown });
    expect(records.filter((record) => record.error)).toEqual([]);
    expect(records.map((record) => record.questionId).sort((left, right) => left - right)).toEqual(dataset.questions.map((question) => question.questionId).sort((left, right) => left - right));
    await until(async () => (await client.keys('vqa-llm:interleaved:image:*')).length === 0);
    await worker.close();
  });

  it('should send a batch\'s last question while an endless iterable is quiet, and stop reading on abort', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=quiet`;
    const worker = await startWorker(queueUrl, []);
    const controller = new AbortController();
    const truck = readFileSync(fixtureImage('truck.jpg'));
    let answered: (answer: QueuedAnswer) => void = () => undefined;
    const first = new Promise<QueuedAnswer>((resolve) => (answered = resolve));
    // One question, then nothing until the batch is stopped (a queue consumer with no more messages).
    async function* items(): AsyncGenerator<QueuedQuestion> {
      yield { id: 'truck', image: truck, question: 'What is it?' };
      await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    const batch = runQueuedQuestions({ queue: queueUrl, items: items(), onResult: (answer) => answered(answer), signal: controller.signal });
    batch.catch(() => undefined);
    expect((await first).answer?.candidates.length).toBeGreaterThan(0);
    controller.abort();
    await expect(batch).rejects.toMatchObject({ name: 'QueueJobError', reason: 'interrupted' });
    await worker.close();
  });

  it('should send a full job at once, without waiting for the next item', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=full-job`;
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker(queueUrl, events);
    const controller = new AbortController();
    const truck = readFileSync(fixtureImage('truck.jpg'));
    const answers: QueuedAnswer[] = [];
    let bothAnswered: () => void = () => undefined;
    const both = new Promise<void>((resolve) => (bothAnswered = resolve));
    async function* items(): AsyncGenerator<QueuedQuestion> {
      yield { id: 'truck-1', image: truck, question: 'What is it?' };
      yield { id: 'truck-2', image: truck, question: 'What color is it?' };
      await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
    // A wait for more questions longer than the test: only a full job goes.
    const batch = runQueuedQuestions({
      queue: queueUrl,
      items: items(),
      maxQuestionsPerJob: 2,
      groupWaitMs: 3_600_000,
      signal: controller.signal,
      onResult: (answer) => {
        answers.push(answer);
        if (answers.length === 2) bothAnswered();
      },
    });
    batch.catch(() => undefined);
    await both;
    expect(answers.map((answer) => answer.id).sort()).toEqual(['truck-1', 'truck-2']);
    expect(new Set(events.filter((event) => event.type === 'started').map((event) => event.jobId)).size).toBe(1);
    controller.abort();
    await expect(batch).rejects.toMatchObject({ name: 'QueueJobError', reason: 'interrupted' });
    await worker.close();
  });

  it('should remove a stopped batch\'s waiting jobs and images while a worker holds one of its jobs', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=stopped-held`;
    const queue = new Queue('stopped-held', { connection: connect(), prefix: 'vqa-llm' });
    // The worker's chain waits at a gate: its job stays active while the batch stops.
    const inner = createVqaChain({ vision, llm: 'none' });
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let entered: () => void = () => undefined;
    const holding = new Promise<void>((resolve) => (entered = resolve));
    const chain: EvalChain = {
      invoke: async (input, config) => {
        entered();
        await gate;
        return inner.invoke(input, config);
      },
    };
    const events: EvalWorkerEvent[] = [];
    const worker = await startEvalWorker({ queue: queueUrl, chain, concurrency: 1, lockDurationMs: 3_000, name: 'held', onEvent: (event) => events.push(event) });
    const controller = new AbortController();
    const items = ['truck.jpg', 'fishing.jpg', 'synthetic.png'].map((name) => ({ id: name, image: fixtureImage(name), question: 'What is it?' }));
    const stopped = runQueuedQuestions({ queue: queueUrl, items, onResult: () => undefined, signal: controller.signal });
    stopped.catch(() => undefined);
    await holding;
    await until(async () => (await queue.getJobCounts('waiting')).waiting === 2);
    controller.abort();
    await expect(stopped).rejects.toMatchObject({ name: 'QueueJobError', reason: 'interrupted' });
    // The waiting jobs and every image are gone; the held job cannot be removed, and is answered for nobody.
    expect(await queue.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 1 });
    expect(await connect().keys('vqa-llm:stopped-held:image:*')).toEqual([]);
    open();
    await until(async () => (await queue.getJobCounts('active', 'completed')).completed === 1);
    expect(await queue.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 0 });
    // Its worker had read the bytes before they went: the job was answered, by that worker alone.
    expect(events.filter((event) => event.type === 'finished').map((event) => event.questionId)).toHaveLength(1);
    await worker.close();
    await queue.close();
  });

  it('should still answer a one-question job whose image is a path, as older producers queued them', { timeout: 60_000 }, async () => {
    const queueUrl = `${redis.url}?queue=legacy`;
    const queue = new Queue('legacy', { connection: connect(), prefix: 'vqa-llm' });
    const queueEvents = new QueueEvents('legacy', { connection: connect(), prefix: 'vqa-llm' });
    await queueEvents.waitUntilReady();
    const events: EvalWorkerEvent[] = [];
    const worker = await startWorker(queueUrl, events);
    const job = await queue.add('question', { questionId: 7, question: 'What is it?', image: fixtureImage('truck.jpg') });
    const result = (await job.waitUntilFinished(queueEvents)) as { worker: string; answer: { candidates: unknown[] } };
    expect(result.worker).toBe('in-process');
    expect(result.answer.candidates.length).toBeGreaterThan(0);
    await until(() => events.length === 2);
    expect(events.map((event) => [event.type, event.questionId])).toEqual([
      ['started', 7],
      ['finished', 7],
    ]);
    await worker.close();
    await queueEvents.close();
    await queue.close();
  });
});
