import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSharedImageCache } from '../../dist/src/distributed/shared-image-cache.js';
import { sharedCacheCounts } from '../../dist/src/distributed/shared-cache-metrics.js';
import { decodeTensor, encodeTensor } from '../../dist/src/distributed/tensor-codec.js';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { InvalidOptionError } from '../../dist/src/errors/index.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';
import { describeWithRedis, startRedis, type TestRedis } from './redis-server.js';
import { startServe, type ServeProcess } from './serve-processes.js';

const dataUrl = (name: string): string => `data:image/${name.endsWith('.png') ? 'png' : 'jpeg'};base64,${readFileSync(fixtureImage(name)).toString('base64')}`;

interface VqaReply {
  answer: string;
  candidates: { answer: string; score: number }[];
  caption: string;
}

async function ask(server: ServeProcess, image: string, question: string): Promise<VqaReply> {
  const response = await fetch(`${server.url}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: dataUrl(image), question }) });
  expect(response.status).toBe(200);
  return (await response.json()) as VqaReply;
}

describe('the shared cache tensor codec', () => {
  const tensor = { type: 'float32' as const, data: Float32Array.from({ length: 17 * 32 }, (_, index) => Math.sin(index) * 3), dims: [1, 17, 32] };

  it('should give back float32 embeddings bit for bit', () => {
    const decoded = decodeTensor(encodeTensor(tensor));
    expect(decoded?.dims).toEqual([1, 17, 32]);
    expect(Buffer.from(decoded!.data.buffer).equals(Buffer.from(tensor.data.buffer))).toBe(true);
  });

  it('should store float16 in half the bytes, within half-precision rounding', () => {
    const float32 = encodeTensor(tensor);
    const float16 = encodeTensor(tensor, { precision: 'float16' });
    expect(float16.byteLength - 4 * 4 - 8).toBe((float32.byteLength - 4 * 4 - 8) / 2);
    const decoded = decodeTensor(float16)!;
    tensor.data.forEach((value, index) => expect(Math.abs(decoded.data[index]! - value)).toBeLessThanOrEqual(Math.abs(value) * 2 ** -11 + 1e-7));
  });

  it('should refuse a damaged, cut or foreign value instead of returning wrong numbers', () => {
    const bytes = encodeTensor(tensor);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3] ^= 0x40;
    expect(decodeTensor(flipped)).toBeUndefined();
    expect(decodeTensor(bytes.subarray(0, bytes.length - 4))).toBeUndefined();
    expect(decodeTensor(Buffer.from('{"not": "a tensor"}'))).toBeUndefined();
  });

  it('should name the flag for a URL that is not Redis', () => {
    expect(() => createSharedImageCache({ url: 'http://127.0.0.1:6379', source: '--cache' })).toThrow(InvalidOptionError);
    expect(() => createSharedImageCache({ url: 'http://127.0.0.1:6379', source: '--cache' })).toThrow(/--cache must be a redis:\/\//);
    expect(() => createSharedImageCache({ url: 'redis://127.0.0.1:6379?precision=int4', source: '--cache' })).toThrow(/precision must be float32 or float16/);
  });
});

describeWithRedis('the shared image-work cache in one process', () => {
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('should answer from another process\'s work, and recompute over a corrupt entry', async () => {
    const first = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', workers: 0, cache: redis.url });
    const computed = await first.candidates(fixtureImage('truck.jpg'), 'What color is the truck?');
    const caption = await first.caption(fixtureImage('truck.jpg'));
    await first.dispose();
    expect(computed.imageCached).toBe(false);

    // A fresh process (empty local caches) finds both in Redis.
    const second = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', workers: 0, cache: redis.url });
    const runsBefore = sharedCacheCounts().encoderRuns['vle-vqa'] ?? 0;
    const reused = await second.candidates(fixtureImage('truck.jpg'), 'What color is the truck?');
    const reusedCaption = await second.caption(fixtureImage('truck.jpg'));
    await second.dispose();
    expect(reused.imageCached).toBe(true);
    expect(reused.candidates).toEqual(computed.candidates);
    expect(reusedCaption).toMatchObject({ caption: caption.caption, tokenIds: caption.tokenIds, cached: true });
    expect(sharedCacheCounts().encoderRuns['vle-vqa'] ?? 0).toBe(runsBefore);

    // Damage every embedding entry: the next process computes again and gets the same answer.
    const raw = new Redis(redis.url);
    const keys = await raw.keys('vqa-llm:img:v1:vle-vqa-*:emb:*');
    expect(keys).toHaveLength(1);
    const good = (await raw.getBuffer(keys[0]!))!;
    expect(good.byteLength).toBeLessThan(17 * 32 * 4 + 64);
    await raw.set(keys[0]!, Buffer.concat([good.subarray(0, good.length - 8), Buffer.alloc(8, 0xff)]));
    const corruptBefore = sharedCacheCounts().operations['image_embeddings|corrupt'] ?? 0;
    const third = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', workers: 0, cache: redis.url });
    const recomputed = await third.candidates(fixtureImage('truck.jpg'), 'What color is the truck?');
    await third.dispose();
    expect(recomputed.imageCached).toBe(false);
    expect(recomputed.candidates).toEqual(computed.candidates);
    expect(sharedCacheCounts().operations['image_embeddings|corrupt']).toBe(corruptBefore + 1);
    // The damaged value was replaced by the recomputed one.
    expect((await raw.getBuffer(keys[0]!))!.equals(good)).toBe(true);
    raw.disconnect();
  });

  it('should keep models with different weights apart', async () => {
    const cache = createSharedImageCache({ url: redis.url });
    expect(await cache.ready()).toBe(true);
    const tensor = { type: 'float32' as const, data: new Float32Array([1, 2, 3]), dims: [1, 3] };
    await cache.embeddingsFor('vle-vqa-aaaa').set('f00d', tensor);
    expect(await cache.embeddingsFor('vle-vqa-bbbb').get('f00d')).toBeUndefined();
    expect((await cache.embeddingsFor('vle-vqa-aaaa').get('f00d'))?.data).toEqual(tensor.data);
    await cache.close();
  });
});

describeWithRedis('two vqa-llm serve replicas sharing one Redis', () => {
  let redis: TestRedis;
  let first: ServeProcess;
  let second: ServeProcess;

  beforeAll(async () => {
    redis = await startRedis();
    // One after the other: the second replica starts with the first one's readiness probe already in Redis.
    first = await startServe(['--cache', redis.url]);
    second = await startServe([], { VQA_LLM_REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await Promise.all([first?.kill(), second?.kill()]);
    await redis?.stop();
  });

  it('should say in its configuration which cache it shares, and where the setting came from', () => {
    expect(first.output()).toMatch(/shared cache\s+redis:\/\/127\.0\.0\.1:\d+\/0\s+\(--cache\)/);
    expect(second.output()).toMatch(/shared cache\s+redis:\/\/127\.0\.0\.1:\d+\/0\s+\(env VQA_LLM_REDIS_URL\)/);
  });

  it("should prove each replica's own vision encoders in its readiness probe, not answer it from Redis", async () => {
    // startServe waited for /readyz; only the probe has run. Each replica ran both encoders once, on an image no
    // cache held: nothing found in Redis, the probe's work stored there like any image's.
    for (const server of [first, second]) {
      expect(await server.metric('vqa_llm_vision_encoder_runs_total{model="vle-vqa"}')).toBe(1);
      expect(await server.metric('vqa_llm_vision_encoder_runs_total{model="blip-captioner"}')).toBe(1);
      expect(await server.metric('vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="hit"}')).toBeUndefined();
      expect(await server.metric('vqa_llm_shared_cache_operations_total{kind="caption",outcome="hit"}')).toBeUndefined();
      // BLIP's and VLE's.
      expect(await server.metric('vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="stored"}')).toBe(2);
    }
  });

  it('should answer a follow-up on the other replica without running a vision encoder, with the same answer', async () => {
    // Counted as differences: each replica's readiness probe also runs a tiny inference at start.
    const counts = async (server: ServeProcess): Promise<number[]> =>
      Promise.all(
        [
          'vqa_llm_vision_encoder_runs_total{model="vle-vqa"}',
          'vqa_llm_vision_encoder_runs_total{model="blip-captioner"}',
          'vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="hit"}',
          'vqa_llm_shared_cache_operations_total{kind="caption",outcome="hit"}',
          'vqa_llm_image_cache_hits_total{kind="image_embeddings"}',
        ].map(async (sample) => (await server.metric(sample)) ?? 0),
      );
    const firstBefore = await counts(first);
    const opening = await ask(first, 'fishing.jpg', "What is in the man's hand?");
    const firstAfter = await counts(first);
    expect(firstAfter.slice(0, 2).map((count, index) => count - firstBefore[index]!)).toEqual([1, 1]);

    const secondBefore = await counts(second);
    const followUp = await ask(second, 'fishing.jpg', 'Where is he standing?');
    const secondAfter = await counts(second);
    // No encoder ran; the embeddings and the caption came from Redis, and the answer says it used cached work.
    expect(secondAfter.map((count, index) => count - secondBefore[index]!)).toEqual([0, 0, 1, 1, 1]);
    expect(followUp.caption).toBe(opening.caption);

    // The same follow-up on the replica that did the work: the same answer, candidates and scores.
    const local = await ask(first, 'fishing.jpg', 'Where is he standing?');
    expect(followUp.answer).toBe(local.answer);
    expect(followUp.candidates).toEqual(local.candidates);
  });

  it('should go on answering when Redis dies mid-run, and count the failures', async () => {
    const before = await ask(second, 'truck.jpg', 'What color is the truck?');
    const firstStored = await first.metric('vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="stored"}');
    const firstRuns = (await first.metric('vqa_llm_vision_encoder_runs_total{model="vle-vqa"}'))!;
    await redis.outage();
    const during = await ask(second, 'synthetic.png', 'What shape is this?');
    const again = await ask(first, 'truck.jpg', 'What color is the truck?');
    expect(during.candidates.length).toBeGreaterThan(0);
    expect(again.candidates).toEqual(before.candidates);
    expect(await second.metric('vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="error"}')).toBeGreaterThan(0);
    expect(await first.metric('vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="error"}')).toBeGreaterThan(0);
    // The first replica computed the truck's embeddings itself, and could not share them.
    expect(await first.metric('vqa_llm_vision_encoder_runs_total{model="vle-vqa"}')).toBe(firstRuns + 1);
    expect(await first.metric('vqa_llm_shared_cache_operations_total{kind="image_embeddings",outcome="stored"}')).toBe(firstStored);
  });
});
