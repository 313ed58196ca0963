import { integerSetting, parseRedisUrl, redact } from './redis-url.js';

/** Where the evaluation queue lives: one Redis URL carries the connection, the queue's name, its key prefix and the producer's window. */
export interface QueueSettings {
  /** The URL for ioredis, without vqa-llm's parameters. */
  connection: string;
  /** BullMQ queue name (`?queue=`). Default `vqa-llm-eval`: producers and workers of one evaluation must agree. */
  name: string;
  /** BullMQ key prefix (`?prefix=`). Default `vqa-llm`. */
  prefix: string;
  /** Producer only (`?window=`): questions in the queue at once. Default 256. */
  window?: number;
  /** Producer only (`?imageTtl=` seconds): how long an image's bytes stay in Redis unrefreshed. Default 86400. */
  imageTtlSeconds?: number;
  /** The URL with its password hidden. */
  displayUrl: string;
}

export const QUEUE_DEFAULTS = { name: 'vqa-llm-eval', prefix: 'vqa-llm', imageTtlSeconds: 86_400 } as const;

/**
 * Reads `redis://host:port/db?queue=NAME&prefix=PREFIX&window=N&imageTtl=SECONDS` as `--queue` takes it.
 *
 * @throws {InvalidOptionError} naming `flag` for anything but a redis(s) URL.
 *
 * @example
 * parseQueueUrl('redis://10.0.0.5:6379/2?queue=val2014', '--queue');
 * // { connection: 'redis://10.0.0.5:6379/2', name: 'val2014', prefix: 'vqa-llm', displayUrl: ... }
 */
export function parseQueueUrl(url: string, flag: string): QueueSettings {
  const { connection, settings } = parseRedisUrl(url, { flag, settings: ['queue', 'prefix', 'window', 'imageTtl'] });
  return {
    connection,
    name: settings.get('queue') ?? QUEUE_DEFAULTS.name,
    prefix: settings.get('prefix') ?? QUEUE_DEFAULTS.prefix,
    ...(settings.has('window') ? { window: integerSetting(settings, 'window', 1, flag) } : {}),
    ...(settings.has('imageTtl') ? { imageTtlSeconds: integerSetting(settings, 'imageTtl', 1, flag) } : {}),
    displayUrl: redact(url),
  };
}
