// A queue's images in Redis: the producer puts each image's bytes once per run, content-addressed by sha256, and
// workers read them, so that no dataset path has to be shared between machines.
import { hashImageBytes } from '../image/load-image.js';
import { InvalidImageError } from '../errors/invalid-image-error.js';
import type { JobImageRef } from './eval-job.js';
import type { RedisClient } from './redis-client.js';

/** Where a queue's images live: the queue's own key prefix and name, as BullMQ's keys. */
export interface ImageStoreLocation {
  prefix: string;
  name: string;
}

/**
 * The key of an image's bytes: `<prefix>:<queue>:image:<run>:<sha256>`. Per run, so that a run deleting its images
 * when done never removes one another run (same images, same queue) still needs.
 */
export function imageStoreKey(location: ImageStoreLocation, image: Pick<JobImageRef, 'run' | 'sha256'>): string {
  return `${location.prefix}:${location.name}:image:${image.run}:${image.sha256}`;
}

/** The reference a job carries for `bytes`. */
export function imageRef(bytes: Uint8Array, run: string, name: string): JobImageRef {
  return { sha256: hashImageBytes(bytes), size: bytes.byteLength, run, name };
}

/**
 * Makes sure the bytes are there for `ttlSeconds` more: refreshes the TTL when the key exists (no upload), else
 * writes them. `overwrite` writes them whatever is there (a worker found them damaged).
 */
export async function putImage(client: RedisClient, key: string, bytes: Uint8Array, ttlSeconds: number, overwrite = false): Promise<void> {
  if (!overwrite && (await client.expire(key, ttlSeconds)) === 1) return;
  await client.set(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), 'EX', ttlSeconds);
}

/**
 * Deletes whatever bytes of `run` are still in Redis, once the run has every answer. Each group deletes its own image
 * when its answers are written; this catches those a killed producer wrote answers for but never deleted (its rerun
 * resumes past them, so no group of the rerun holds them).
 */
export async function deleteRunImages(client: RedisClient, location: ImageStoreLocation, run: string): Promise<void> {
  const match = `${imageStoreKey(location, { run, sha256: '' })}*`;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', match, 'COUNT', 256);
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

/**
 * Reads a job's image and checks it against its reference.
 *
 * @throws {InvalidImageError} `not_found` when the key is gone (its TTL passed while the job waited, or its run
 * cleaned up), `fetch_failed` when the bytes' length or sha256 differ from the reference.
 */
export async function fetchImage(client: RedisClient, location: ImageStoreLocation, image: JobImageRef): Promise<Buffer> {
  const bytes = await client.getBuffer(imageStoreKey(location, image));
  const subject = `The image ${image.name} (sha256 ${image.sha256.slice(0, 12)})`;
  if (bytes === null) {
    throw new InvalidImageError('not_found', `${subject} is no longer in the queue's Redis: its TTL passed before a worker took the job, or its run was cleaned up.`, {
      hint: 'Run the producer again: it puts the image back and asks again.',
    });
  }
  if (bytes.byteLength !== image.size || hashImageBytes(bytes) !== image.sha256) {
    throw new InvalidImageError('fetch_failed', `${subject} read from Redis does not match its hash (${bytes.byteLength} bytes, ${image.size} expected).`, {
      hint: 'Something else writes under the queue\'s prefix: give each deployment its own ?prefix=.',
    });
  }
  return bytes;
}
