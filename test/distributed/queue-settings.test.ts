import { describe, expect, it } from 'vitest';
import { formatQueuedProgress } from '../../dist/src/distributed/queued-eval-cli.js';
import { evalJobId, queueJobId } from '../../dist/src/distributed/eval-job.js';
import { parseQueueUrl } from '../../dist/src/distributed/queue-settings.js';
import { InvalidOptionError } from '../../dist/src/errors/index.js';

describe('the --queue URL', () => {
  it('should carry the queue name, key prefix and window, and hand ioredis the rest', () => {
    expect(parseQueueUrl('redis://:s3cret@10.0.0.5:6380/2?queue=val2014&prefix=team-a&window=64&family=6', '--queue')).toEqual({
      connection: 'redis://:s3cret@10.0.0.5:6380/2?family=6',
      name: 'val2014',
      prefix: 'team-a',
      window: 64,
      displayUrl: 'redis://:***@10.0.0.5:6380/2?queue=val2014&prefix=team-a&window=64&family=6',
    });
    expect(parseQueueUrl('redis://127.0.0.1:6379', '--queue')).toMatchObject({ name: 'vqa-llm-eval', prefix: 'vqa-llm' });
    expect(parseQueueUrl('redis://127.0.0.1:6379?imageTtl=600', '--queue')).toMatchObject({ connection: 'redis://127.0.0.1:6379', imageTtlSeconds: 600 });
  });

  it('should refuse what is not a Redis URL, naming the flag', () => {
    expect(() => parseQueueUrl('127.0.0.1:6379', '--queue')).toThrow(InvalidOptionError);
    expect(() => parseQueueUrl('amqp://127.0.0.1', '--queue')).toThrow(/--queue must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => parseQueueUrl('redis://127.0.0.1?window=0', '--queue')).toThrow(/window must be a positive integer/);
    expect(() => parseQueueUrl('redis://127.0.0.1?imageTtl=-5', '--queue')).toThrow(/imageTtl must be a positive integer/);
  });
});

describe('evalJobId', () => {
  it('should give each run and question its own id, never one BullMQ refuses', () => {
    expect(evalJobId('r0a1b2', 7)).not.toBe(evalJobId('r0a1b2', '7'));
    expect(evalJobId('r0a1b2', 7)).not.toBe(evalJobId('r9f9f9', 7));
    expect(evalJobId('r0a1b2', 'coco:123')).not.toContain(':');
    expect(Number.isInteger(Number(evalJobId('r0a1b2', 7)))).toBe(false);
    expect(queueJobId('r0a1b2', 'i1f2e:3')).not.toContain(':');
    expect(queueJobId('r0a1b2', 'i1')).not.toBe(queueJobId('r9f9f9', 'i1'));
  });
});

describe('formatQueuedProgress', () => {
  it('should name each worker with its answers', () => {
    expect(formatQueuedProgress({ done: 5, total: 15, failed: 1, resumed: 2, byWorker: { 'w-2': 2, 'w-1': 3 } })).toBe(
      'eval: 5/15 questions (failed 1, resumed 2) from 2 worker(s): w-1 3, w-2 2',
    );
  });
});
