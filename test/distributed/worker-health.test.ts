import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWorkerHealth } from '../../dist/src/distributed/worker-health.js';
import { root } from '../helpers/fixtures.js';
import { startCli, tinyModelArgs, type CliProcess } from './cli-processes.js';
import { startHeldLlm, type HeldLlm } from './held-llm.js';
import { describeWithRedis, freePort, startRedis, type TestRedis } from './redis-server.js';

const dataset = join(root, 'test', 'fixtures', 'eval', 'questions.jsonl');
const questions = readFileSync(dataset, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { questionId: number; question: string; answers: string[] });
const outputDir = join(root, 'test', 'output', 'worker-health');

interface Readiness {
  status: string;
  ready: boolean;
  reason?: string;
  checks: { models: { ready: boolean; reason?: string }; queue: { ready: boolean; reason?: string } };
}

async function readyz(url: string): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as Readiness };
}

/** Polls `/readyz` until `accept` holds (a state that an event in another process brings about). */
async function readyzUntil(url: string, accept: (state: { status: number; body: Readiness }) => boolean): Promise<{ status: number; body: Readiness }> {
  for (;;) {
    const state = await readyz(url);
    if (accept(state)) return state;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function metric(url: string, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

function finishedEvents(worker: CliProcess): unknown[] {
  return worker
    .stderr()
    .split('\n')
    .filter((line) => line.startsWith('{"type":"finished"'))
    .map((line) => JSON.parse(line) as unknown);
}

describeWithRedis('the worker health endpoint, in process', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('should answer liveness at once and say "loading" until the models are in', async () => {
    const health = await startWorkerHealth({ port: 0, queue: redis.url, defaultMetrics: false });
    try {
      expect(health.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(await (await fetch(`${health.url}/healthz`)).json()).toEqual({ status: 'ok' });
      // The queue answers pings; the models are what it waits for.
      const state = await readyzUntil(health.url, ({ body }) => body.checks.queue.ready);
      expect(state).toEqual({ status: 503, body: { status: 'not_ready', ready: false, reason: 'loading', checks: { models: { ready: false, reason: 'loading' }, queue: { ready: true } } } });
      health.modelsLoaded({ check: async () => ({ ready: true }) });
      expect((await readyz(health.url)).status).toBe(200);
      health.setDraining();
      expect((await readyz(health.url)).body).toMatchObject({ ready: false, reason: 'draining', checks: { models: { ready: true }, queue: { ready: true } } });
      expect((await fetch(`${health.url}/nowhere`)).status).toBe(404);
      expect((await fetch(`${health.url}/readyz`, { method: 'POST' })).status).toBe(405);
    } finally {
      await health.close();
    }
  });

  it('should refuse a port in use, and a queue URL that is not Redis, naming the setting', async () => {
    const first = await startWorkerHealth({ port: 0, queue: redis.url, defaultMetrics: false });
    try {
      await expect(startWorkerHealth({ port: first.port, queue: redis.url })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    } finally {
      await first.close();
    }
    await expect(startWorkerHealth({ port: 0, queue: 'http://127.0.0.1:6379', source: '--queue' })).rejects.toThrow(/--queue/);
  });

  it('should refuse a --health-port that is not a port before loading anything', async () => {
    for (const port of ['70000', 'abc', '-1']) {
      const worker = startCli(['worker', '--queue', redis.url, ...tinyModelArgs, '--llm', 'none', `--health-port=${port}`]);
      expect(await worker.exited).not.toBe(0);
      expect(worker.stderr()).toContain(`--health-port must be 0-65535, got "${port}"`);
      expect(worker.stderr()).not.toMatch(/Loading models/);
    }
  });
});

describeWithRedis('vqa-llm worker --health-port', () => {
  let redis: TestRedis;
  let llm: HeldLlm;
  let worker: CliProcess;
  let url: string;
  const env = (): Record<string, string> => ({ OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: 'sk-test' });
  const llmArgs = ['--llm', 'openai', '--llm-model', 'held-llm'];
  const producerArgs = (output: string): string[] => ['eval', '--dataset', dataset, '--output', join(outputDir, output), '--json', '--fresh', '--queue', redis.url];

  beforeAll(async () => {
    mkdirSync(outputDir, { recursive: true });
    redis = await startRedis();
    llm = await startHeldLlm(new Map(questions.map((question) => [question.question, question.answers[0]!])));
    // The port from the environment, as a process manager would set it.
    worker = startCli(['worker', '--queue', redis.url, ...tinyModelArgs, ...llmArgs, '--verbose'], { ...env(), VQA_LLM_WORKER_HEALTH_PORT: String(await freePort()) });
    await worker.waitFor(/health on http:\/\/127\.0\.0\.1:\d+/);
    url = /health on (http:\/\/127\.0\.0\.1:\d+)/.exec(worker.stderr())![1]!;
    await worker.waitFor(/takes questions from/);
  }, 60_000);
  afterAll(async () => {
    await worker?.kill();
    await llm?.close();
    await redis?.stop();
  });

  it('should turn ready once its own encoders ran a probe and the queue answers', { timeout: 60_000 }, async () => {
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    const state = await readyzUntil(url, ({ status, body }) => status === 200 || (body.reason !== 'loading' && !body.reason?.startsWith('queue unreachable')));
    expect(state).toEqual({ status: 200, body: { status: 'ready', ready: true, checks: { models: { ready: true }, queue: { ready: true } } } });
    // The probe's tiny inference ran both vision encoders in this process.
    expect(await metric(url, 'vqa_llm_vision_encoder_runs_total{model="vle-vqa"}')).toBe(1);
    expect(await metric(url, 'vqa_llm_vision_encoder_runs_total{model="blip-captioner"}')).toBe(1);
    expect(await metric(url, 'vqa_llm_worker_questions_started_total')).toBe(0);
    expect(await metric(url, 'process_resident_memory_bytes')).toBeGreaterThan(0);
  });

  it('should count the jobs it answers on /metrics', { timeout: 120_000 }, async () => {
    const producer = startCli(producerArgs('counted.jsonl'));
    expect(await producer.exited, producer.stderr()).toBe(0);
    const written = readFileSync(join(outputDir, 'counted.jsonl'), 'utf8').trim().split('\n');
    expect(written).toHaveLength(questions.length);
    // The producer hears of the last answer through Redis, possibly before the worker's own bookkeeping ends.
    const finished = async (): Promise<number | undefined> => metric(url, 'vqa_llm_worker_questions_finished_total');
    for (let wait = 0; (await finished()) !== questions.length && wait < 50; wait += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    // One worker answered every question: each counted once, begun and acknowledged.
    expect(finishedEvents(worker)).toHaveLength(questions.length);
    expect(await finished()).toBe(questions.length);
    expect(await metric(url, 'vqa_llm_worker_questions_started_total')).toBe(questions.length);
    expect(await metric(url, 'vqa_llm_worker_questions_failed_total')).toBe(0);
    expect(await metric(url, 'vqa_llm_worker_questions_active')).toBe(0);
    // Jobs group questions (one per image, or one per question): however grouped, each job started is finished.
    const jobs = (await metric(url, 'vqa_llm_worker_jobs_started_total'))!;
    expect(jobs).toBeGreaterThan(0);
    expect(jobs).toBeLessThanOrEqual(questions.length);
    expect(await metric(url, 'vqa_llm_worker_jobs_finished_total')).toBe(jobs);
    expect(await metric(url, 'vqa_llm_worker_jobs_active')).toBe(0);
    expect(await metric(url, 'vqa_llm_worker_job_duration_seconds_count')).toBe(jobs);
  });

  it('should say the queue is unreachable while Redis is down, stay alive, and turn ready when it is back', { timeout: 60_000 }, async () => {
    await redis.outage();
    const down = await readyzUntil(url, ({ status }) => status === 503);
    expect(down.body).toMatchObject({ ready: false, checks: { models: { ready: true }, queue: { ready: false } } });
    expect(down.body.reason).toMatch(/^queue unreachable: /);
    // Liveness does not hang on Redis: restarting the worker would not bring Redis back.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    await redis.restart();
    expect((await readyzUntil(url, ({ status }) => status === 200)).body.ready).toBe(true);
  });

  it('should fail readiness at SIGTERM while it finishes the job in hand, then exit 0', { timeout: 120_000 }, async () => {
    const heldQuestion = questions[4]!;
    const { held } = llm.hold(heldQuestion.question);
    const producer = startCli(producerArgs('drained.jsonl'));
    await held;
    expect(await metric(url, 'vqa_llm_worker_jobs_active')).toBe(1);
    const answeredBefore = finishedEvents(worker).length;
    worker.child.kill('SIGTERM');
    await worker.waitFor(/SIGTERM, finishing the questions in hand/);
    // At once: the signal's handler turned readiness before the drain began. The job is still held.
    expect(await readyz(url)).toMatchObject({ status: 503, body: { ready: false, reason: 'draining' } });
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await metric(url, 'vqa_llm_worker_jobs_active')).toBe(1);
    expect(worker.child.exitCode).toBeNull();

    llm.release();
    expect(await worker.exited).toBe(0);
    // The held job was finished, not abandoned.
    expect(finishedEvents(worker).slice(answeredBefore)).toEqual(expect.arrayContaining([expect.objectContaining({ questionId: heldQuestion.questionId })]));
    expect(worker.stderr()).toMatch(/answered \d+ question\(s\), exiting/);
    await producer.kill();
  });
});
