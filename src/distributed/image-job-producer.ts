import { createHash, randomBytes } from 'node:crypto';
import type { Queue, QueueEvents } from 'bullmq';
import { QueueJobError } from '../errors/queue-job-error.js';
import { readImageInput } from '../image/load-image.js';
import { isImageJobData, isImageJobResult, queueJobId, type EvalJobResult, type ImageJobData, type ImageJobResult, type JobImageRef, type JobQuestion, type QueueJobData } from './eval-job.js';
import { imageRef, imageStoreKey, putImage, type ImageStoreLocation } from './image-store.js';
import type { RedisClient } from './redis-client.js';

export interface ImageJobProducerOptions {
  queue: Queue<QueueJobData, unknown>;
  /** Must be listening (`waitUntilReady`) before the first `submit`. */
  events: QueueEvents;
  /** A client for the images' bytes (the queue's Redis). */
  client: RedisClient;
  location: ImageStoreLocation;
  /** Names this run in job ids and image keys: the same key in a resumed run finds the same jobs. */
  runKey: string;
  /** How long an image stays in Redis without the producer refreshing it (it does while it waits for the job). */
  imageTtlSeconds: number;
  /** How often jobs still awaited are checked directly, in case a completion event was missed. Default 5000 ms. */
  sweepMs?: number;
}

/** One image and its questions, to be answered by one worker. */
export interface ImageGroup {
  /** Names the group's job within the run (the same in a resumed run). */
  key: string;
  /** A path the producer can read (workers need not), or the bytes. */
  image: string | Uint8Array;
  /** For messages. Default: the path, or `bytes`. */
  name?: string;
  questions: JobQuestion[];
  /** Stops waiting (the job stays queued; a resumed run collects it). */
  signal?: AbortSignal;
}

/** Sends image jobs and waits for them; see `createImageJobProducer`. */
export interface ImageJobProducer {
  /**
   * Puts the image in Redis and its questions in the queue as one job (or finds the job a previous run of the same
   * key added, done or not), and resolves with one result per question, in the group's order. Rejects when the
   * image cannot be read here (as a single-process run would), when the queue gives up on the job, or on abort.
   */
  submit(group: ImageGroup): Promise<ImageJobResult>;
  /** Removes the group's job, and its image once no other group of this run uses it: call it once its answers are kept. */
  release(key: string): Promise<void>;
  /** Stops the sweep and the TTL refresh; jobs still awaited stay queued. */
  close(): void;
}

interface Waiter {
  resolve: (result: ImageJobResult) => void;
  reject: (error: unknown) => void;
  /**
   * The attempt awaited (`ImageJobData.attempt`): a retry reuses its job id, so an answer or a failure of the
   * attempt before it (a late event, a sweep that read the old job) must not settle this one.
   */
  attempt?: string;
}

/**
 * The producer's side of image jobs. Each job carries an image's hash and its questions; the bytes go to Redis
 * once (`putImage`), their TTL refreshed while the job is awaited, and deleted when the group is released. A worker
 * that finds the bytes gone or damaged answers with `imageUnavailable`: the producer puts them back and asks once
 * more, then records the failure, so an expired image costs one retry, never a loop.
 *
 * @example
 * const producer = createImageJobProducer({ queue, events, client, location: { prefix: 'vqa-llm', name: 'vqa-llm-eval' }, runKey: 'r1', imageTtlSeconds: 3600 });
 * const { results } = await producer.submit({ key: 'dogs', image: 'dogs.jpg', questions: [{ id: 1, question: 'How many dogs?' }] });
 * await producer.release('dogs');
 */
export function createImageJobProducer(options: ImageJobProducerOptions): ImageJobProducer {
  const { queue, events, client, location, runKey, imageTtlSeconds } = options;
  const waiters = new Map<string, Waiter>();
  // Per group key: its job and its image's key, for release.
  const groups = new Map<string, { jobId: string; imageKey?: string }>();
  // Image keys in use by this run's unreleased groups, with how many use each.
  const images = new Map<string, number>();

  /**
   * Settles the job's waiter, unless the outcome belongs to another attempt than the one awaited. A result without
   * an attempt (a worker older than attempts) is taken as it is; a failure is read from the job's own data, where
   * no attempt means a job added before this one (by a producer older than attempts).
   */
  const settle = (jobId: string, attempt: string | undefined, outcome: { result?: ImageJobResult; failedReason?: string }): void => {
    const waiter = waiters.get(jobId);
    if (!waiter) return;
    if (waiter.attempt !== undefined && attempt !== waiter.attempt && (attempt !== undefined || outcome.result === undefined)) return;
    waiters.delete(jobId);
    if (outcome.result) waiter.resolve(outcome.result);
    else waiter.reject(new QueueJobError('job_failed', `The queue gave up on job ${jobId}: ${outcome.failedReason ?? 'no reason given'}.`, { hint: 'Run the same command again to retry it.' }));
  };
  /**
   * A completed job's return value: an image job's result, or a failure. A worker older than image jobs answers one
   * with a one-question error (it reads no `questions`): waiting on would never end, so the job has failed.
   */
  const completed = (jobId: string, returnvalue: unknown): void => {
    if (isImageJobResult(returnvalue)) settle(jobId, returnvalue.attempt, { result: returnvalue });
    // No attempt to read from such an answer: it is taken for the one awaited.
    else settle(jobId, waiters.get(jobId)?.attempt, { failedReason: 'its worker answered without an image job\'s results (a worker older than image jobs: upgrade workers before producers)' });
  };
  const onCompleted = ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }): void => {
    if (waiters.has(jobId)) completed(jobId, returnvalue);
  };
  // The event has no attempt: the job itself says which attempt failed.
  const onFailed = ({ jobId }: { jobId: string }): void => {
    if (waiters.has(jobId)) check(jobId).catch(() => undefined);
  };
  events.on('completed', onCompleted as never);
  events.on('failed', onFailed as never);

  /** The job's state, settling its waiter when it is already done: a resumed run's jobs may have finished meanwhile. */
  const check = async (jobId: string): Promise<{ state: string; data?: QueueJobData }> => {
    // The state first: a job read before it completes has no return value yet, and would read as failed.
    const state = await queue.getJobState(jobId);
    if (state === 'unknown') return { state };
    const job = await queue.getJob(jobId);
    if (!job) return { state: 'unknown' };
    if (state === 'completed') completed(jobId, job.returnvalue);
    else if (state === 'failed') settle(jobId, attemptOf(job.data), { failedReason: job.failedReason || 'failed' });
    return { state, data: job.data };
  };
  const sweep = setInterval(() => {
    for (const jobId of waiters.keys()) check(jobId).catch(() => undefined);
  }, options.sweepMs ?? 5_000);
  sweep.unref();
  // A third of the TTL, so an image awaited by a live producer never expires, whatever the queue's backlog.
  const refresh = setInterval(
    () => {
      if (images.size === 0) return;
      const pipeline = client.pipeline();
      for (const key of images.keys()) pipeline.expire(key, imageTtlSeconds);
      pipeline.exec().catch(() => undefined);
    },
    // No floor: one at 1 s would let a 1 s TTL lapse between refreshes.
    Math.min(60_000, (imageTtlSeconds * 1_000) / 3),
  );
  refresh.unref();

  const track = (group: string, jobId: string, image: JobImageRef | undefined): void => {
    const known = groups.get(group);
    const imageKey = image ? imageStoreKey(location, image) : undefined;
    if (known?.imageKey === imageKey && known?.jobId === jobId) return;
    if (imageKey && known?.imageKey !== imageKey) {
      images.set(imageKey, (images.get(imageKey) ?? 0) + 1);
      // The group's image changed (a file changed between runs: the found job names the old bytes): the old key
      // is no longer this group's to refresh. It is left to its TTL, since the found job may still read it.
      if (known?.imageKey) {
        const users = (images.get(known.imageKey) ?? 1) - 1;
        if (users > 0) images.set(known.imageKey, users);
        else images.delete(known.imageKey);
      }
    }
    groups.set(group, { jobId, imageKey: imageKey ?? known?.imageKey });
  };

  return {
    async submit(group) {
      group.signal?.throwIfAborted();
      const ids = group.questions.map((question) => String(question.id));
      let jobId = queueJobId(runKey, group.key);
      let found = await queue.getJob(jobId);
      // The same key holding other questions (a run resumed with another --limit, or a group split by a crash
      // between its records): a job of its own for exactly these questions.
      if (found && !covers(found.data, ids)) {
        // The old job is nobody's now: removed unless a worker holds it (then removeOnComplete's age limit does).
        const old = found;
        if ((await old.getState()) !== 'active') await queue.remove(jobId).catch(() => undefined);
        jobId = queueJobId(runKey, `${group.key}.${digest(ids)}`);
        found = await queue.getJob(jobId);
      }
      let bytes: Uint8Array | undefined;
      let ref: JobImageRef | undefined = found && isImageJobData(found.data) ? found.data.image : undefined;
      const name = group.name ?? (typeof group.image === 'string' ? group.image : 'bytes');
      const ensureImage = async (overwrite: boolean): Promise<JobImageRef> => {
        if (!bytes) {
          // The checks and errors of a single-process run (missing file, too many bytes...), before any upload.
          bytes = (await readImageInput(group.image, { signal: group.signal })).bytes;
          ref = imageRef(bytes, runKey, name);
        }
        // Counted before the upload: a group of the same image released meanwhile must not delete the bytes that
        // this one has just found in Redis (EXPIRE) and counts on.
        track(group.key, jobId, ref);
        await putImage(client, imageStoreKey(location, ref!), bytes, imageTtlSeconds, overwrite);
        return ref!;
      };
      if (ref) track(group.key, jobId, ref);
      // The attempt awaited: the found job's, or a new one for each job this run adds.
      let attempt: string | undefined;
      const add = async (overwrite: boolean): Promise<void> => {
        const image = await ensureImage(overwrite);
        const data: ImageJobData = { kind: 'image-questions', image, questions: group.questions, attempt };
        await queue.add('image-questions', data, { jobId });
      };

      for (let retried = false; ; retried = true) {
        // What to do, and so which attempt to await, is known before the waiter exists: no outcome of an earlier
        // attempt (a late event, a sweep that read the old job) can then settle it.
        const state = retried ? 'retry' : ((await found?.getState()) ?? 'unknown');
        const fresh = state === 'retry' || state === 'unknown' || state === 'failed';
        attempt = fresh ? newAttempt() : attemptOf(found!.data);
        const answered = new Promise<ImageJobResult>((resolve, reject) => waiters.set(jobId, { resolve, reject, attempt }));
        // Rejected at once on abort; the job stays queued and a rerun collects it.
        let onAbort: (() => void) | undefined;
        const aborted = new Promise<never>((_, reject) => {
          onAbort = () => reject(new QueueJobError('interrupted', `Stopped waiting for job ${jobId}.`, { cause: group.signal?.reason }));
          group.signal?.addEventListener('abort', onAbort, { once: true });
        });
        // Nobody awaits it once the job is answered: an abort after that must not be an unhandled rejection.
        aborted.catch(() => undefined);
        try {
          if (state === 'unknown') await add(false);
          else if (state === 'failed' || state === 'retry') {
            // Given up on in an earlier run, or answered without the image: asked again under the same id.
            await queue.remove(jobId);
            await add(state === 'retry');
          } else {
            if (state !== 'completed') await ensureImage(false);
            // Finished before the waiter existed: its event is gone, the job says it.
            await check(jobId);
          }
          const result = await Promise.race([answered, aborted]);
          if (result.imageUnavailable && !retried) continue;
          return pick(result, group.questions);
        } finally {
          waiters.delete(jobId);
          if (onAbort) group.signal?.removeEventListener('abort', onAbort);
        }
      }
    },
    async release(key) {
      const group = groups.get(key);
      if (!group) return;
      groups.delete(key);
      // A failure to remove only leaves the job to removeOnComplete's age limit, and the image to its TTL.
      await queue.remove(group.jobId).catch(() => undefined);
      if (!group.imageKey) return;
      const users = (images.get(group.imageKey) ?? 1) - 1;
      if (users > 0) {
        images.set(group.imageKey, users);
        return;
      }
      images.delete(group.imageKey);
      await client.del(group.imageKey).catch(() => undefined);
    },
    close() {
      clearInterval(sweep);
      clearInterval(refresh);
      events.off('completed', onCompleted as never);
      events.off('failed', onFailed as never);
    },
  };
}

function newAttempt(): string {
  return randomBytes(6).toString('hex');
}

function attemptOf(data: QueueJobData): string | undefined {
  return isImageJobData(data) ? data.attempt : undefined;
}

function covers(data: QueueJobData, ids: string[]): boolean {
  if (!isImageJobData(data)) return false;
  const held = new Set(data.questions.map((question) => String(question.id)));
  return ids.every((id) => held.has(id));
}

function digest(ids: string[]): string {
  return createHash('sha256').update(JSON.stringify(ids)).digest('hex').slice(0, 16);
}

/** The results for `questions`, in their order (a resumed run's job may hold more). */
function pick(result: ImageJobResult, questions: JobQuestion[]): ImageJobResult {
  const byId = new Map(result.results.map((entry) => [String(entry.id), entry]));
  return {
    ...result,
    results: questions.map(
      (question) =>
        byId.get(String(question.id)) ?? { id: question.id, worker: result.worker, error: { name: 'QueueJobError', code: 'job_failed', message: `The job's answer has no result for question ${String(question.id)}.` } },
    ),
  };
}

/** Results as `EvalJobResult`s without their ids. */
export function withoutId(result: ImageJobResult['results'][number]): EvalJobResult {
  const { id: _id, ...rest } = result;
  return rest as EvalJobResult;
}
