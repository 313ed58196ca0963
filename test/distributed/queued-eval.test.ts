import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { root } from '../helpers/fixtures.js';
import { startCli, tinyModelArgs, type CliProcess } from './cli-processes.js';
import { startHeldLlm, type HeldLlm } from './held-llm.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

const dataset = join(root, 'test', 'fixtures', 'eval', 'questions.jsonl');
const questions = readFileSync(dataset, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { questionId: number; question: string; image: string; answers: string[] });
const outputDir = join(root, 'test', 'output', 'distributed');

interface JobEvent {
  type: 'started' | 'finished';
  jobId: string;
  questionId: number;
  worker: string;
}

function jobEvents(worker: CliProcess): JobEvent[] {
  return worker
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{"type":'))
    .map((line) => JSON.parse(line) as JobEvent);
}

function records(file: string): { questionId: number; error?: unknown }[] {
  return readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { questionId: number; error?: unknown });
}

/**
 * The summary without its latencies, which differ from run to run, and with numbers to 12 digits: means are summed
 * in the order answers arrive, which differs too (0.9733333333333333 against 0.9733333333333334).
 */
function accuracyPart(stdout: string): unknown {
  const summary = JSON.parse(stdout) as Record<string, unknown>;
  delete summary.latency;
  return JSON.parse(JSON.stringify(summary, (_key, value: unknown) => (typeof value === 'number' ? Number(value.toPrecision(12)) : value)));
}

describeWithRedis('eval --queue with vqa-llm worker processes', () => {
  let redis: TestRedis;
  let llm: HeldLlm;
  let workers: CliProcess[] = [];
  let single: string;
  const env = (): Record<string, string> => ({ OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-test' });
  const llmArgs = ['--llm', 'openai', '--llm-model', 'held-llm'];
  const evalArgs = (output: string, extra: string[] = []): string[] => ['eval', '--dataset', dataset, '--output', join(outputDir, output), '--json', ...extra];

  beforeAll(async () => {
    mkdirSync(outputDir, { recursive: true });
    redis = await startRedis();
    llm = await startHeldLlm(new Map(questions.map((question) => [question.question, question.answers[0]!])));
    // The reference: one process, as `vqa-llm eval` runs without a queue.
    const reference = startCli([...evalArgs('single.jsonl', ['--fresh']), ...tinyModelArgs, ...llmArgs], env());
    expect(await reference.exited).toBe(0);
    single = reference.stdout();
    workers = [1, 2, 3].map((index) =>
      startCli(['worker', '--queue', redis.url, ...tinyModelArgs, ...llmArgs, '--concurrency', '2', '--lock-duration', '3000', '--name', `worker-${index}`, '--verbose'], env()),
    );
    await Promise.all(workers.map((worker) => worker.waitFor(/takes questions from/)));
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.kill()));
    await llm?.close();
    await redis?.stop();
  });

  it('should answer every question exactly once when a worker is killed mid-job, with the summary of a single-process run', { timeout: 180_000 }, async () => {
    const victimQuestion = questions[7]!;
    const { held } = llm.hold(victimQuestion.question);
    const producer = startCli(evalArgs('queued.jsonl', ['--fresh', '--queue', redis.url]));
    await held;
    // The worker waiting on the held LLM call is mid-job: kill it there.
    const victim = workers.find((worker) => jobEvents(worker).some((event) => event.type === 'started' && event.questionId === victimQuestion.questionId))!;
    expect(victim).toBeDefined();
    await victim.kill('SIGKILL');
    llm.release();

    expect(await producer.exited).toBe(0);
    const written = records(join(outputDir, 'queued.jsonl'));
    expect(written.map((record) => record.questionId).sort((left, right) => left - right)).toEqual(questions.map((question) => question.questionId));
    expect(written.filter((record) => record.error)).toEqual([]);
    expect(accuracyPart(producer.stdout())).toEqual(accuracyPart(single));

    // Every question's answer reached the queue once over all workers (`finished` is BullMQ's acknowledgement: a
    // worker whose lock expired may have started one twice, but only one answer is taken); the victim's by another.
    const victimName = jobEvents(victim)[0]!.worker;
    const allFinished = (): JobEvent[] => workers.flatMap(jobEvents).filter((event) => event.type === 'finished');
    // The producer hears of the last answer through Redis, possibly before that worker's log line reaches this process.
    for (let wait = 0; allFinished().length < questions.length && wait < 50; wait += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    const finished = allFinished();
    expect(finished.map((event) => event.questionId).sort((left, right) => left - right)).toEqual(questions.map((question) => question.questionId));
    expect(finished.find((event) => event.questionId === victimQuestion.questionId)!.worker).not.toBe(victimName);
    // One job per image: its questions were answered together, by one worker.
    const images = new Map(questions.map((question) => [question.questionId, question.image]));
    const jobOf = new Map<string, Set<string>>();
    for (const event of finished) jobOf.set(images.get(event.questionId)!, (jobOf.get(images.get(event.questionId)!) ?? new Set()).add(`${event.jobId} ${event.worker}`));
    expect([...jobOf.values()].map((jobs) => jobs.size)).toEqual([...new Set(images.values())].map(() => 1));
    // Progress named the workers that answered.
    expect(producer.stderr()).toMatch(/eval: 15\/15 questions \(failed 0, resumed 0\) from [23] worker\(s\): worker-/);
  });

  it('should resume a killed producer without asking any question twice', { timeout: 180_000 }, async () => {
    const live = workers.filter((worker) => worker.child.exitCode === null && worker.child.signalCode === null);
    const before = live.map((worker) => jobEvents(worker).length);
    const { held } = llm.hold(questions[11]!.question);
    const first = startCli(evalArgs('resumed.jsonl', ['--fresh', '--queue', redis.url]));
    await held;
    await first.kill('SIGKILL');
    llm.release();
    // The workers finish the jobs already queued (the held one among them) with no producer listening; their answers
    // wait in Redis. The images the producer had not sent yet are sent by the rerun.
    const finishedNow = (): JobEvent[] => live.flatMap((worker, index) => jobEvents(worker).slice(before[index])).filter((event) => event.type === 'finished');
    while (!finishedNow().some((event) => event.questionId === questions[11]!.questionId)) await new Promise((resolve) => setTimeout(resolve, 100));
    const answeredWhileAway = finishedNow().length;

    const second = startCli(evalArgs('resumed.jsonl', ['--queue', redis.url]));
    expect(await second.exited, second.stderr()).toBe(0);
    const written = records(join(outputDir, 'resumed.jsonl'));
    expect(written.map((record) => record.questionId).sort((left, right) => left - right)).toEqual(questions.map((question) => question.questionId));
    expect(accuracyPart(second.stdout())).toEqual(accuracyPart(single));
    for (let wait = 0; finishedNow().length < questions.length && wait < 50; wait += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    // Each question answered once over both producer runs: the rerun took what was answered while it was away.
    expect(finishedNow().map((event) => event.questionId).sort((left, right) => left - right)).toEqual(questions.map((question) => question.questionId));
    expect(answeredWhileAway).toBeGreaterThan(0);
    // The rerun removed the images both runs put in Redis, once their answers were written.
    const client = new Redis(redis.url);
    expect(await client.keys('vqa-llm:vqa-llm-eval:image:*')).toEqual([]);
    client.disconnect();
  });
});
