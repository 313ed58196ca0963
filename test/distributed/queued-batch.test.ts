// The batch example through the queue: the built example with --queue, answered by `vqa-llm worker` processes.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { root } from '../helpers/fixtures.js';
import { startCli, tinyModelArgs, type CliProcess } from './cli-processes.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';

const run = promisify(execFile);
const outputDir = join(root, 'test', 'output', 'distributed', 'batch');
const question = 'What is in the picture?';

async function batch(output: string, extra: string[]): Promise<string> {
  const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...env } = process.env;
  const { stdout } = await run(process.execPath, [join(root, 'dist', 'examples', 'batch.js'), ...extra, 'test/fixtures/images', question, output], { cwd: root, env: { ...env, VQA_LLM_OFFLINE: '1' }, timeout: 120_000 });
  return stdout;
}

/** The lines without `ms` (each run's own latency), in image order. */
function lines(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((line) => {
      const { ms: _ms, ...rest } = JSON.parse(line) as Record<string, unknown>;
      return rest;
    })
    .sort((left, right) => String(left.image).localeCompare(String(right.image)));
}

describeWithRedis('examples/batch.js --queue', () => {
  let redis: TestRedis;
  let workers: CliProcess[] = [];

  beforeAll(async () => {
    mkdirSync(outputDir, { recursive: true });
    redis = await startRedis();
    workers = [1, 2].map((index) => startCli(['worker', '--queue', redis.url, ...tinyModelArgs, '--llm', 'none', '--name', `batch-worker-${index}`, '--verbose']));
    await Promise.all(workers.map((worker) => worker.waitFor(/takes questions from/)));
  });
  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.kill()));
    await redis?.stop();
  });

  it('should answer every image once through the workers and write the lines of a local run', { timeout: 180_000 }, async () => {
    const local = join(outputDir, 'local.jsonl');
    const queued = join(outputDir, 'queued.jsonl');
    await batch(local, ['--tiny', '--llm', 'none']);
    expect(await batch(queued, ['--queue', redis.url])).toContain('wrote 3 lines');

    const expected = lines(local);
    expect(expected.map((line) => line.image)).toEqual(['fishing.jpg', 'synthetic.png', 'truck.jpg']);
    expect(lines(queued)).toEqual(expected);
    // Each image's question finished once, over both workers.
    const finished = (): { questionId: string }[] =>
      workers.flatMap((worker) =>
        worker
          .stderr()
          .split('\n')
          .filter((line) => line.startsWith('{"type":"finished"'))
          .map((line) => JSON.parse(line) as { questionId: string }),
      );
    // The example hears of the last answer through Redis, possibly before that worker's log line reaches this process.
    for (let wait = 0; finished().length < 3 && wait < 50; wait += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(finished().map((event) => event.questionId).sort()).toEqual(['fishing.jpg', 'synthetic.png', 'truck.jpg']);
  });

  it('should remove its jobs and images from Redis when stopped with Ctrl-C (SIGINT)', { timeout: 120_000 }, async () => {
    // A queue no worker serves: the jobs wait until the example is stopped.
    const queueUrl = `${redis.url}?queue=interrupted`;
    const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...env } = process.env;
    const child = spawn(process.execPath, [join(root, 'dist', 'examples', 'batch.js'), '--queue', queueUrl, 'test/fixtures/images', question, join(outputDir, 'interrupted.jsonl')], {
      cwd: root,
      env: { ...env, VQA_LLM_OFFLINE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += String(chunk)));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const client = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue('interrupted', { connection: client, prefix: 'vqa-llm' });
    try {
      for (let wait = 0; (await queue.getJobCounts('waiting')).waiting < 3; wait += 1) {
        if (wait > 600) throw new Error(`the example queued no jobs: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(await client.keys('vqa-llm:interrupted:image:*')).toHaveLength(3);
      child.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(stderr).toContain('stopped');
      expect(await queue.getJobCounts('waiting', 'active', 'completed')).toEqual({ waiting: 0, active: 0, completed: 0 });
      expect(await client.keys('vqa-llm:interrupted:image:*')).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await queue.close();
      client.disconnect();
    }
  });
});
