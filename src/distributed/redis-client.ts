import type { Redis } from 'ioredis';

export type RedisClient = Redis;

export interface OpenRedisOptions {
  /** `cache`: never wait for Redis (answers go on without it); `queue`: wait and retry (BullMQ needs every command). */
  role: 'cache' | 'queue';
  /** Cache only: how long one command may take. */
  commandTimeoutMs?: number;
  /** Called with connection errors (they are also retried); by default they are ignored. */
  onError?: (error: Error) => void;
}

/**
 * An ioredis client set up for its role. The cache's client fails a command at once while disconnected (no offline
 * queue, no per-command retry) and bounds each command, so an outage costs an answer nothing but the local work;
 * it keeps reconnecting in the background. The queue's client follows BullMQ's requirements
 * (`maxRetriesPerRequest: null`): its commands wait for Redis to come back. ioredis is loaded on first use, so that
 * processes that never get a redis:// URL never load it.
 *
 * @example
 * const client = await openRedis('redis://127.0.0.1:6379/0', { role: 'cache', commandTimeoutMs: 500 });
 */
export async function openRedis(url: string, options: OpenRedisOptions): Promise<RedisClient> {
  const { Redis } = await import('ioredis');
  const common = {
    connectionName: `vqa-llm-${options.role}`,
    // Back off up to 2 s between attempts, forever: Redis restarting is an ordinary event.
    retryStrategy: (attempt: number) => Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)),
  };
  const client =
    options.role === 'cache'
      ? new Redis(url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: options.commandTimeoutMs ?? 500, connectTimeout: 2_000 })
      : new Redis(url, { ...common, maxRetriesPerRequest: null });
  // An 'error' event without a listener would be printed by ioredis on every reconnect attempt.
  client.on('error', (error: Error) => options.onError?.(error));
  return client;
}
