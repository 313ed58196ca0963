// Load numbers for the server: requests/second and latency of POST /v1/chat/completions on the tiny models, with
// 1 and 8 concurrent clients, and the server's event-loop delay while it answers. The server runs in a child
// process so that the load generator's own work does not show up in the server's event loop.
//
// Run:
//   npx tsc -p . && node dist/bench/server.js [--duration 10] [--llm none|fake] [--images same|distinct]
//   same:     every request asks about the same image: caption and image embeddings come from the cache
//   distinct: every request's bytes differ (a counter appended after the JPEG's end), so both vision models run in full
//   fake:     a loopback OpenAI-compatible LLM that answers at once, so the LLM step's own work is included
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createChatModel, createVisionModels, startVqaServer } from '../src/index.js';
import { startInstantLlm } from './instant-llm.js';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
const { values } = parseArgs({
  options: {
    child: { type: 'boolean' },
    duration: { type: 'string', default: '10' },
    llm: { type: 'string', default: 'none' },
    images: { type: 'string', default: 'same' },
    json: { type: 'boolean', default: false },
  },
});

type ChildMessage = { type: 'ready'; url: string } | { type: 'delay'; p50: number; p99: number; max: number; mean: number };

async function runChild(): Promise<void> {
  const vision = await createVisionModels({ modelsDir: join(root, 'test', 'fixtures', 'models'), captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  const llm = values.llm === 'fake' ? createChatModel({ provider: 'openai', baseUrl: (await startInstantLlm()).baseUrl, model: 'instant', env: {} }) : 'none';
  const server = await startVqaServer({ vision, llm, logger: false, disposeVision: true, host: '127.0.0.1', port: 0 });
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  process.on('message', (message: string) => {
    if (message === 'reset') histogram.reset();
    if (message === 'report') {
      const ms = (ns: number): number => ns / 1e6;
      process.send!({ type: 'delay', p50: ms(histogram.percentile(50)), p99: ms(histogram.percentile(99)), max: ms(histogram.max), mean: ms(histogram.mean) } satisfies ChildMessage);
    }
    if (message === 'stop') void server.close().then(() => process.exit(0));
  });
  process.send!({ type: 'ready', url: server.url } satisfies ChildMessage);
}

function nextMessage(child: ChildProcess): Promise<ChildMessage> {
  return new Promise((resolve) => child.once('message', (message) => resolve(message as ChildMessage)));
}

async function runParent(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--child', '--llm', values.llm!], { stdio: 'inherit' });
  const ready = await nextMessage(child);
  if (ready.type !== 'ready') throw new Error('the server did not start');
  const jpeg = readFileSync(join(root, 'test', 'fixtures', 'images', 'fishing.jpg'));
  let counter = 0;
  const body = (bytes: Buffer): string =>
    JSON.stringify({
      model: 'vqa-llm',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${bytes.toString('base64')}` } }, { type: 'text', text: "What is in the man's hand?" }] }],
    });
  const sameBody = body(jpeg);

  const rows: { clients: number; requestsPerSecond: number; p50Ms: number; p99Ms: number; non2xx: number; eventLoopDelayMs: { p50: number; p99: number; max: number } }[] = [];
  console.log(`POST /v1/chat/completions · tiny models · llm ${values.llm} · images ${values.images} · ${values.duration} s per run · node ${process.version}`);
  console.log('clients  req/s   p50 ms  p99 ms  non-2xx   loop delay p50/p99/max ms');
  for (const connections of [1, 8]) {
    // A short warm-up so that the JIT and the worker pools are not part of the first run's numbers.
    await autocannon({ url: `${ready.url}/v1/chat/completions`, method: 'POST', headers: { 'content-type': 'application/json' }, body: sameBody, connections, duration: 2 });
    child.send('reset');
    const result = await autocannon({
      url: `${ready.url}/v1/chat/completions`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      connections,
      duration: Number(values.duration),
      requests: [
        {
          setupRequest: (request) => ({
            ...request,
            body: values.images === 'distinct' ? body(Buffer.concat([jpeg, Buffer.from(`#${counter++}`)])) : sameBody,
          }),
        },
      ],
    });
    child.send('report');
    const delay = await nextMessage(child);
    if (delay.type !== 'delay') throw new Error('no delay report');
    rows.push({
      clients: connections,
      requestsPerSecond: result.requests.average,
      p50Ms: result.latency.p50,
      p99Ms: result.latency.p99,
      non2xx: result.non2xx,
      eventLoopDelayMs: { p50: delay.p50, p99: delay.p99, max: delay.max },
    });
    console.log(
      `${String(connections).padStart(7)}  ${result.requests.average.toFixed(1).padStart(6)}  ${String(result.latency.p50).padStart(6)}  ${String(result.latency.p99).padStart(6)}  ${String(result.non2xx).padStart(7)}   ${delay.p50.toFixed(1)}/${delay.p99.toFixed(1)}/${delay.max.toFixed(1)}`,
    );
  }
  child.send('stop');
  // For bench/run.ts, which collects every benchmark into bench/results.json.
  if (values.json) console.log(`RESULT ${JSON.stringify({ llm: values.llm, images: values.images, durationSeconds: Number(values.duration), rows })}`);
}

if (values.child) await runChild();
else await runParent();
