// `node dist/bench/distributed.js`: the figures of docs/scaling.md.
// 1. eval throughput through the queue with 1, 2 and 3 `vqa-llm worker` processes (and 3 sharing image work through
//    the Redis cache) against one process running `runEval` itself, on a VQAv2-shaped dataset: distinct images with
//    three questions each (VQAv2 test-dev: 107,394 questions on 36,807 images);
// 2. the latency of a follow-up question on another `vqa-llm serve` replica (image work from Redis) against the
//    same follow-up on the replica that did the work (local cache) and against a first question (no cache);
// 3. the shared cache's float16 storage: bytes per entry and what it changes in the VQA scores;
// 4. what a queued image costs: the producer reading, hashing and putting its bytes in Redis, a worker reading and
//    checking them, and the Redis memory it holds meanwhile (`--image-cost` runs this part alone: seconds).
// Tiny test models by default; --full-size uses the stand-ins of `npm run models:full-size` (short runs).
// It starts its own redis-server (Debian's package) on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { Redis } from 'ioredis';
import { createVqaChain } from '../chains/vqa-chain.js';
import { fetchImage, imageRef, imageStoreKey, putImage } from '../src/distributed/image-store.js';
import { runQueuedEval } from '../src/distributed/queued-eval.js';
import { readImageInput } from '../src/image/load-image.js';
import { loadJsonlDataset } from '../src/eval/dataset.js';
import { runEval } from '../src/eval/run-eval.js';
import { packageRoot } from '../src/paths.js';
import { createVisionModels } from '../src/runtime/vision-models.js';
import { median } from './stats.js';

const root = packageRoot();
const { values: args } = parseArgs({
  options: {
    questions: { type: 'string', default: '90' },
    workers: { type: 'string', default: '1,2,3' },
    'full-size': { type: 'boolean', default: false },
    'latency-images': { type: 'string', default: '10' },
    'image-cost': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const fullSize = args['full-size'];
const models = fullSize
  ? { dir: join(root, 'models', 'full-size'), caption: 'blip-base-standin', vqa: 'vle-base-standin' }
  : { dir: join(root, 'test', 'fixtures', 'models'), caption: 'tiny-blip', vqa: 'tiny-vle' };
const modelArgs = ['--models', models.dir, '--caption-model', models.caption, '--vqa-model', models.vqa, '--llm', 'none', '--offline'];
const work = join(root, 'test', 'output', 'bench-distributed', fullSize ? 'full-size' : 'tiny');
const cli = join(root, 'bin', 'vqa-llm.js');
// Every child this bench starts, so that an interrupted run leaves none behind.
const children = new Set<ChildProcess>();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(130);
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis(): Promise<{ url: string; stop: () => void }> {
  const port = await freePort();
  const dir = join(tmpdir(), `vqa-llm-bench-redis-${port}`);
  mkdirSync(dir, { recursive: true });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += String(chunk);
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code} (is Debian's redis-server installed?)`)));
  });
  return { url: `redis://127.0.0.1:${port}/0`, stop: () => child.kill('SIGKILL') };
}

/** Distinct images (re-encoded fixture photos: new bytes, new hash) with the fixture's three questions each. */
async function makeDataset(count: number): Promise<string> {
  const fixtures = join(root, 'test', 'fixtures', 'eval');
  const source = readFileSync(join(fixtures, 'questions.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown> & { image: string });
  const byImage = new Map<string, typeof source>();
  for (const question of source) byImage.set(question.image, [...(byImage.get(question.image) ?? []), question]);
  const images = [...byImage.keys()];
  mkdirSync(join(work, 'images'), { recursive: true });
  const lines: string[] = [];
  for (let index = 0; lines.length < count; index += 1) {
    const base = images[index % images.length]!;
    const file = join(work, 'images', `${index}.jpg`);
    await sharp(join(fixtures, base)).resize({ width: 320 + index }).jpeg({ quality: 85 }).toFile(file);
    for (const question of byImage.get(base)!) {
      if (lines.length < count) lines.push(JSON.stringify({ ...question, questionId: lines.length + 1, image: file }));
    }
  }
  const dataset = join(work, 'questions.jsonl');
  writeFileSync(dataset, `${lines.join('\n')}\n`);
  return dataset;
}

function startProcess(argv: string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [cli, ...argv], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VQA_LLM_LOG_LEVEL: 'warn' } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const collect = (chunk: Buffer): void => {
    output += String(chunk);
  };
  child.stdout!.on('data', collect);
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      collect(chunk);
      if (ready.test(output)) resolve({ child, output: () => output });
    });
    child.once('exit', (code) => reject(new Error(`vqa-llm ${argv[0]} exited with ${code}: ${output}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

interface ThroughputRow {
  setup: string;
  workers: number;
  questions: number;
  seconds: number;
  questionsPerSecond: number;
  byWorker?: Record<string, number>;
}

async function singleProcess(dataset: string): Promise<ThroughputRow> {
  const vision = await createVisionModels({ modelsDir: models.dir, captionModel: models.caption, vqaModel: models.vqa, offline: true });
  const chain = createVqaChain({ vision, llm: 'none' });
  const data = await loadJsonlDataset(dataset);
  const started = performance.now();
  // Concurrency 1, as one worker with --concurrency 1: the vision models already use every core for one question.
  await runEval({ dataset: data, chain, output: join(work, 'single.jsonl'), fresh: true, concurrency: 1 });
  const seconds = (performance.now() - started) / 1000;
  await vision.dispose();
  return { setup: 'one process, no queue', workers: 0, questions: data.questions.length, seconds, questionsPerSecond: data.questions.length / seconds };
}

async function queued(dataset: string, redisUrl: string, workers: number, cache: boolean): Promise<ThroughputRow> {
  const processes = await Promise.all(
    Array.from({ length: workers }, (_, index) =>
      startProcess(['worker', '--queue', redisUrl, ...modelArgs, '--name', `w${index + 1}`, ...(cache ? ['--cache', redisUrl.replace(/\/0$/, '/1')] : [])], /takes questions from/),
    ),
  );
  const data = await loadJsonlDataset(dataset);
  const started = performance.now();
  const result = await runQueuedEval({ dataset: data, queue: redisUrl, output: join(work, `queued-${workers}${cache ? '-cache' : ''}.jsonl`), fresh: true });
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(processes.map(({ child }) => stop(child)));
  return {
    setup: `${workers} worker${workers > 1 ? 's' : ''}${cache ? ', shared cache' : ''}`,
    workers,
    questions: data.questions.length,
    seconds,
    questionsPerSecond: data.questions.length / seconds,
    byWorker: result.byWorker,
  };
}

interface Answered {
  ms: number;
  cached: { caption: boolean; imageEmbeddings: boolean };
  candidates: unknown;
  timings: Record<string, number>;
}

async function post(url: string, image: string, question: string): Promise<Answered> {
  const body = JSON.stringify({ image: `data:image/jpeg;base64,${readFileSync(image).toString('base64')}`, question });
  const started = performance.now();
  const response = await fetch(`${url}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = (await response.json()) as Omit<Answered, 'ms'>;
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${JSON.stringify(json)}`);
  return { ms: performance.now() - started, cached: json.cached, candidates: json.candidates, timings: json.timings };
}

async function cacheLatency(redisUrl: string, imageCount: number): Promise<Record<string, number>> {
  const cacheUrl = redisUrl.replace(/\/0$/, '/2');
  const [first, second] = await Promise.all([0, 1].map(() => startProcess(['serve', '--port', '0', ...modelArgs, '--cache', cacheUrl], /listening on http/)));
  const urls = [first!, second!].map(({ output }) => /listening on (http:\/\/[\d.:]+)/.exec(output())![1]!);
  for (const url of urls) while (!(await fetch(`${url}/readyz`)).ok) await new Promise((resolve) => setTimeout(resolve, 200));
  const cold: Answered[] = [];
  const otherReplica: Answered[] = [];
  const sameReplica: Answered[] = [];
  let mismatches = 0;
  for (let index = 0; index < imageCount; index += 1) {
    const image = join(work, 'images', `${index}.jpg`);
    cold.push(await post(urls[0]!, image, 'What is in the picture?'));
    const remote = await post(urls[1]!, image, 'What color is it?');
    const local = await post(urls[0]!, image, 'What color is it?');
    if (!remote.cached.imageEmbeddings || !remote.cached.caption) throw new Error('the follow-up on the other replica did not come from the shared cache');
    if (JSON.stringify(remote.candidates) !== JSON.stringify(local.candidates)) mismatches += 1;
    otherReplica.push(remote);
    sameReplica.push(local);
  }
  await Promise.all([first!, second!].map(({ child }) => stop(child)));
  // Client-side wall time, and the server's own stages: `prepare` is reading and decoding the image (the other
  // replica has not decoded it yet), `vision` the caption and candidates stages together.
  const stat = (list: Answered[], pick: (answered: Answered) => number): number => Math.round(median(list.map(pick)) * 10) / 10;
  const row = (list: Answered[]) => ({ wallMs: stat(list, (answered) => answered.ms), prepareMs: stat(list, (answered) => answered.timings.prepare ?? 0), visionMs: stat(list, (answered) => answered.timings.vision ?? 0) });
  return { images: imageCount, candidateMismatches: mismatches, firstQuestion: row(cold), followUpOtherReplica: row(otherReplica), followUpSameReplica: row(sameReplica) } as unknown as Record<string, number>;
}

async function float16Effect(redisUrl: string, imageCount: number): Promise<Record<string, number>> {
  // One process: its local caches are cleared between the two questions, so the second reads Redis's float16 copy.
  const vision = await createVisionModels({ modelsDir: models.dir, captionModel: models.caption, vqaModel: models.vqa, offline: true, cache: redisUrl.replace(/\/0$/, '/3?precision=float16') });
  let maxScoreDifference = 0;
  let top1Agree = 0;
  let top5Agree = 0;
  for (let index = 0; index < imageCount; index += 1) {
    const image = join(work, 'images', `${index}.jpg`);
    const exact = await vision.candidates(image, 'What is in the picture?');
    vision.clearCache();
    const half = await vision.candidates(image, 'What is in the picture?');
    if (!half.imageCached) throw new Error('float16 embeddings were not read from Redis');
    const scores = new Map(exact.candidates.map((candidate) => [candidate.answer, candidate.score]));
    for (const candidate of half.candidates) maxScoreDifference = Math.max(maxScoreDifference, Math.abs(candidate.score - (scores.get(candidate.answer) ?? 0)));
    if (exact.candidates[0]!.answer === half.candidates[0]!.answer) top1Agree += 1;
    if (exact.candidates.map((candidate) => candidate.answer).join('|') === half.candidates.map((candidate) => candidate.answer).join('|')) top5Agree += 1;
  }
  await vision.dispose();
  const client = new Redis(redisUrl.replace(/\/0$/, '/3'));
  const sizes: Record<string, number> = {};
  for (const key of await client.keys('*:emb:*')) {
    const kind = key.includes(':vle-vqa-') ? 'vleEntryBytes' : 'blipEntryBytes';
    sizes[kind] = await client.strlen(key);
  }
  client.disconnect();
  return { images: imageCount, maxScoreDifference, top1Agreement: top1Agree / imageCount, top5OrderAgreement: top5Agree / imageCount, ...sizes };
}

/**
 * The per-image cost image jobs add: COCO-sized JPEGs (640x480; quality 97 to reach val2014's ~160 KB from the smooth fixture photos), each
 * read from disk, hashed and put in Redis by the producer (a miss: EXPIRE then SET), then read and checked by a
 * worker (GET, length, sha256), one at a time on loopback; and Redis's own MEMORY USAGE of each key.
 */
async function imageCost(redisUrl: string, count: number): Promise<Record<string, number>> {
  const fixtures = join(root, 'test', 'fixtures', 'eval');
  const bases = ['dogs.jpg', 'door.jpg', 'fishing.jpg', 'truck.jpg', 'birds.jpg'];
  const dir = join(work, 'coco-sized');
  mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const file = join(dir, `${index}.jpg`);
    await sharp(join(fixtures, bases[index % bases.length]!)).resize({ width: 640 + (index % 7), height: 480, fit: 'fill' }).jpeg({ quality: 97 }).toFile(file);
    files.push(file);
  }
  const client = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const location = { prefix: 'bench', name: 'image-cost' };
  const put: number[] = [];
  const fetched: number[] = [];
  const sizes: number[] = [];
  const memory: number[] = [];
  for (const file of files) {
    let started = performance.now();
    const { bytes } = await readImageInput(file);
    const ref = imageRef(bytes, 'rbench', file);
    const key = imageStoreKey(location, ref);
    await putImage(client, key, bytes, 3_600);
    put.push(performance.now() - started);
    started = performance.now();
    await fetchImage(client, location, ref);
    fetched.push(performance.now() - started);
    sizes.push(bytes.byteLength);
    memory.push(Number(await client.call('MEMORY', 'USAGE', key)));
  }
  await client.del(...(await client.keys('bench:image-cost:*')));
  client.disconnect();
  const round = (value: number): number => Math.round(value * 100) / 100;
  return {
    images: count,
    medianBytes: Math.round(median(sizes)),
    producerPutMs: round(median(put)),
    workerFetchMs: round(median(fetched)),
    redisMemoryOverBytes: Math.round(median(memory.map((used, index) => used / sizes[index]!)) * 1000) / 1000,
  };
}

async function main(): Promise<void> {
  if (args['image-cost']) {
    mkdirSync(work, { recursive: true });
    const redis = await startRedis();
    try {
      console.log(JSON.stringify({ imageCost: await imageCost(redis.url, 50) }, null, 2));
    } finally {
      redis.stop();
    }
    return;
  }
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const redis = await startRedis();
  try {
    const dataset = await makeDataset(Number(args.questions));
    const result: Record<string, unknown> = {
      command: `node dist/bench/distributed.js ${process.argv.slice(2).join(' ')}`.trim(),
      date: new Date().toISOString(),
      machine: { cores: availableParallelism(), node: process.version },
      models: `${models.caption} + ${models.vqa}`,
    };
    const throughput: ThroughputRow[] = [];
    // Written after each phase: a long run that is stopped keeps what it measured.
    const save = (): void => {
      result.throughput = throughput.map((row) => ({ ...row, seconds: Math.round(row.seconds * 100) / 100, questionsPerSecond: Math.round(row.questionsPerSecond * 1000) / 1000 }));
      writeFileSync(args.out ?? join(work, 'results.json'), `${JSON.stringify(result, null, 2)}\n`);
    };
    const phase = (row: ThroughputRow): void => {
      throughput.push(row);
      console.log(`${row.setup}: ${row.questions} questions in ${row.seconds.toFixed(1)} s, ${row.questionsPerSecond.toFixed(3)} questions/s${row.byWorker ? ` (${Object.values(row.byWorker).join('/')})` : ''}`);
      save();
    };
    phase(await singleProcess(dataset));
    for (const count of args.workers!.split(',').map(Number)) phase(await queued(dataset, redis.url, count, false));
    const most = Math.max(...args.workers!.split(',').map(Number));
    phase(await queued(dataset, redis.url, most, true));
    const images = Number(args['latency-images']);
    result.cacheLatency = await cacheLatency(redis.url, images);
    save();
    result.float16 = await float16Effect(redis.url, images);
    save();
    result.imageCost = await imageCost(redis.url, 50);
    save();
    console.log(JSON.stringify({ cacheLatency: result.cacheLatency, float16: result.float16, imageCost: result.imageCost }, null, 2));
  } finally {
    redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
