// Long hardening runs, too slow for npm test: overload, soak and SIGTERM under load against `vqa-llm serve` on the
// tiny models, run as a user runs it (a child process), with a loopback LLM that answers at once.
//
//   1. overload: autocannon at 4x the server's capacity (in flight + queue) for STRESS_LOAD_S (60) seconds on
//      /v1/chat/completions: counts by status, rate, p50/p99 of accepted (200) and of refused (503) requests;
//   2. soak: load at capacity for STRESS_SOAK_S (120) seconds, RSS sampled from /metrics every 5 s;
//   3. SIGTERM with requests in flight and queued: how many accepted requests got no answer (must be 0);
//   4. attack mix (bench/stress-attacks.ts), three parts of STRESS_ATTACK_S (15) seconds against a fresh server with a
//      5 s deadline: decode bombs, deep JSON, non-reading streams, unfinished bodies and a 503 flood beside ordinary
//      clients, with the server's event-loop delay, RSS and open descriptors. STRESS_ONLY=attack runs only this.
//
// Run: npm run test:stress (builds, runs this, then the long fuzz), or `node dist/bench/stress.js`.
// Writes bench/out/stress.json and prints a summary.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startInstantLlm } from './instant-llm.js';
import { runAttackMix, type AttackReport } from './stress-attacks.js';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';

const root = join(fileURLToPath(import.meta.url), '..', '..', '..');
const LOAD_S = Number(process.env.STRESS_LOAD_S ?? 60);
const SOAK_S = Number(process.env.STRESS_SOAK_S ?? 120);
const CONCURRENCY = Number(process.env.STRESS_MAX_CONCURRENCY ?? 2);
const QUEUE = Number(process.env.STRESS_MAX_QUEUE ?? 8);
const CAPACITY = CONCURRENCY + QUEUE;
const ATTACK_S = Number(process.env.STRESS_ATTACK_S ?? 15);
const ONLY_ATTACK = process.env.STRESS_ONLY === 'attack';
// `none` serves without an LLM, to tell the vision side's memory from the LLM step's.

async function startServe(llmBaseUrl: string, extraArgs: string[] = []): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(
    process.execPath,
    [join(root, 'bin', 'vqa-llm.js'), 'serve', '--port', '0', '--models', join(root, 'test', 'fixtures', 'models'), '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', ...(process.env.STRESS_LLM === 'none' ? ['--llm', 'none'] : ['--llm', 'openai', '--llm-base-url', llmBaseUrl, '--llm-model', 'instant']), '--max-concurrency', String(CONCURRENCY), '--max-queue', String(QUEUE), '--log-level', 'warn', '--no-web', ...extraArgs],
    { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1' }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      stderr += String(chunk);
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  // Readiness first: the probe inference warms the worker threads.
  for (;;) {
    if ((await fetch(`${url}/readyz`)).status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { child, url, stderr: () => stderr };
}

// Distinct image bytes per request (a counter after the JPEG's end marker, which decoders ignore), so that the vision
// models run rather than answer from the per-image cache.
function bodies(count: number): string[] {
  const jpeg = readFileSync(join(root, 'test', 'fixtures', 'images', 'fishing.jpg'));
  return Array.from({ length: count }, (_, index) => {
    const bytes = Buffer.concat([jpeg, Buffer.from(`#${index}`)]);
    const url = `data:image/jpeg;base64,${bytes.toString('base64')}`;
    return JSON.stringify({ model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: "What is in the man's hand?" }, { type: 'image_url', image_url: { url } }] }] });
  });
}

async function rss(url: string): Promise<number> {
  return (await memory(url)).rss;
}

/** RSS, V8 heap in use and external (Buffer, native) memory of the server, from its /metrics. */
async function memory(url: string): Promise<{ rss: number; heapUsed: number; external: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string): number => Number(new RegExp(`^${name} ([\\d.e+]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
  return { rss: read('vqa_llm_rss_bytes'), heapUsed: read('nodejs_heap_size_used_bytes'), external: read('nodejs_external_memory_bytes') };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface LoadResult {
  connections: number;
  seconds: number;
  total: number;
  ratePerSecond: number;
  byStatus: Record<string, number>;
  errors: number;
  timeouts: number;
  share503: number;
  accepted: { p50: number; p99: number; max: number };
  refused: { p50: number; p99: number; max: number };
}

async function load(url: string, connections: number, seconds: number, payloads: string[]): Promise<LoadResult> {
  let next = 0;
  const latencies: Record<string, number[]> = {};
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: `${url}/v1/chat/completions`,
        method: 'POST',
        connections,
        duration: seconds,
        timeout: 30,
        headers: { 'content-type': 'application/json' },
        requests: [{ setupRequest: (request) => ({ ...request, body: payloads[next++ % payloads.length] }) }],
      },
      (error, finished) => (error ? reject(error) : resolve(finished)),
    );
    // Per-status latencies: autocannon's own percentiles mix the instant 503s with the answered requests.
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
      (latencies[statusCode] ??= []).push(responseTime);
    });
  });
  const byStatus = Object.fromEntries(Object.entries(latencies).map(([status, list]) => [status, list.length]));
  const total = Object.values(byStatus).reduce((sum, count) => sum + count, 0);
  const summary = (list: number[] = []): LoadResult['accepted'] => {
    const sorted = [...list].sort((left, right) => left - right);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN };
  };
  return {
    connections,
    seconds,
    total,
    ratePerSecond: total / seconds,
    byStatus,
    errors: result.errors,
    timeouts: result.timeouts,
    share503: (byStatus['503'] ?? 0) / Math.max(1, total),
    accepted: summary(latencies['200']),
    refused: summary(latencies['503']),
  };
}

async function sigtermUnderLoad(url: string, child: ChildProcess, payloads: string[]): Promise<{ sent: number; answered200: number; refused503: number; lost: number; exitCode: number | null }> {
  const sent = CAPACITY;
  const requests = Array.from({ length: sent }, (_, index) =>
    fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payloads[index % payloads.length] }).then(
      (response) => response.status,
      () => -1,
    ),
  );
  // The signal lands once every request has been accepted (in flight or queued), so that each one counts.
  const giveUpAt = Date.now() + 10_000;
  while (Date.now() < giveUpAt) {
    const text = await (await fetch(`${url}/metrics`)).text();
    const read = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
    if (read(/^vqa_llm_queue_depth (\d+)$/m) + read(/^vqa_llm_requests_in_flight (\d+)$/m) >= sent) break;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const statuses = await Promise.all(requests);
  const answered200 = statuses.filter((status) => status === 200).length;
  const refused503 = statuses.filter((status) => status === 503).length;
  return { sent, answered200, refused503, lost: sent - answered200, exitCode: await exited };
}

async function attackPhase(): Promise<AttackReport> {
  const llm = await startInstantLlm();
  const { child, url } = await startServe(llm.baseUrl, ['--request-timeout', '5000']);
  process.stderr.write(`stress: attack mix, three parts of ${ATTACK_S} s...\n`);
  try {
    return await runAttackMix({ url, root, seconds: ATTACK_S, ordinaryBodies: bodies(64), slowLlm: (ms) => llm.setDelay(ms) });
  } finally {
    child.kill('SIGKILL');
    llm.server.close();
  }
}

function attackLines(attack: AttackReport): string[] {
  return [
    `attack mix (3 x ${attack.seconds} s): ordinary ${JSON.stringify(attack.ordinary.byStatus)}, answered p50 ${attack.ordinary.p50Ms} ms, p99 ${attack.ordinary.p99Ms} ms, max ${attack.ordinary.maxMs} ms; /healthz ${attack.healthz.sent} probes, ${attack.healthz.failed} failed, max ${attack.healthz.maxMs} ms`,
    `  attacks ${JSON.stringify(attack.attacks)}; non-reading streams ${attack.nonReadingStreams.opened} opened, ${attack.nonReadingStreams.cutByServer} cut by the server; unfinished bodies ${JSON.stringify(attack.unfinishedBodies.answered)}`,
    ...(['hostile', 'flood', 'slowBodies'] as const).map((part) => {
      const figures = attack.server[part];
      return `  ${part}: event-loop delay max ${figures.eventLoopDelayMaxMs} ms (p99 max ${figures.eventLoopDelayP99MaxMs} ms), RSS max ${figures.rssMaxMiB} MiB, open fds max ${figures.openFdsMax}`;
    }),
    `  after: RSS ${attack.server.rssEndMiB} MiB, open fds ${attack.server.openFdsEnd}`,
  ];
}

async function main(): Promise<void> {
  if (ONLY_ATTACK) {
    const attack = await attackPhase();
    mkdirSync(join(root, 'bench', 'out'), { recursive: true });
    writeFileSync(join(root, 'bench', 'out', 'stress-attack.json'), `${JSON.stringify(attack, null, 2)}\n`);
    process.stdout.write(`${attackLines(attack).join('\n')}\n`);
    return;
  }
  const llm = await startInstantLlm();
  const { child, url } = await startServe(llm.baseUrl);
  const payloads = bodies(512);
  const rssAtStart = await rss(url);
  process.stderr.write(`stress: capacity ${CAPACITY} (${CONCURRENCY} in flight + ${QUEUE} queued); RSS at start ${(rssAtStart / 2 ** 20).toFixed(1)} MiB\n`);

  process.stderr.write(`stress: overload, ${4 * CAPACITY} connections for ${LOAD_S} s...\n`);
  const overload = await load(url, 4 * CAPACITY, LOAD_S, payloads);
  const rssAfterLoad = await rss(url);

  process.stderr.write(`stress: soak, ${CAPACITY} connections for ${SOAK_S} s...\n`);
  const samples: { atSeconds: number; rssMiB: number; heapUsedMiB: number; externalMiB: number }[] = [];
  const started = Date.now();
  const mib = (bytes: number): number => Number((bytes / 2 ** 20).toFixed(1));
  const sampler = setInterval(() => {
    void memory(url).then((value) =>
      samples.push({ atSeconds: Math.round((Date.now() - started) / 1000), rssMiB: mib(value.rss), heapUsedMiB: mib(value.heapUsed), externalMiB: mib(value.external) }),
    );
  }, 5_000);
  const soak = await load(url, CAPACITY, SOAK_S, payloads);
  clearInterval(sampler);
  const rssAfterSoak = await rss(url);
  // Levels off: the last third of the soak grows by at most 5% (+10 MiB of noise) over the peak of the third before it,
  // once caches (byte-bounded) and V8's heap have found their size.
  const third = Math.max(1, Math.floor(samples.length / 3));
  const firstHalfMax = Math.max(...samples.slice(third, 2 * third).map((sample) => sample.rssMiB));
  const secondHalfMax = Math.max(...samples.slice(2 * third).map((sample) => sample.rssMiB));
  const levelsOff = secondHalfMax <= firstHalfMax * 1.05 + 10;

  process.stderr.write('stress: SIGTERM with requests in flight and queued...\n');
  // A slower LLM for this phase, so that requests are still queued when the signal lands rather than already done.
  llm.setDelay(300);
  const shutdown = await sigtermUnderLoad(url, child, payloads);
  llm.server.close();

  const attack = ATTACK_S > 0 ? await attackPhase() : undefined;

  const report = {
    capacity: { inFlight: CONCURRENCY, queue: QUEUE },
    attack,
    overload,
    soak: { ...soak, rssSamples: samples, middleThirdPeakMiB: firstHalfMax, lastThirdPeakMiB: secondHalfMax, levelsOff },
    rss: { startMiB: rssAtStart / 2 ** 20, afterOverloadMiB: rssAfterLoad / 2 ** 20, afterSoakMiB: rssAfterSoak / 2 ** 20 },
    shutdown,
  };
  mkdirSync(join(root, 'bench', 'out'), { recursive: true });
  writeFileSync(join(root, 'bench', 'out', 'stress.json'), `${JSON.stringify(report, null, 2)}\n`);

  const unexpected = Object.keys(overload.byStatus).filter((status) => status !== '200' && status !== '503');
  const lines = [
    `overload (${overload.connections} connections, ${LOAD_S} s): ${overload.ratePerSecond.toFixed(1)} req/s, statuses ${JSON.stringify(overload.byStatus)}, 503 share ${(overload.share503 * 100).toFixed(1)}%`,
    `  accepted p50 ${overload.accepted.p50} ms, p99 ${overload.accepted.p99} ms, max ${overload.accepted.max} ms; refused p99 ${overload.refused.p99} ms; errors ${overload.errors}, timeouts ${overload.timeouts}`,
    `soak (${soak.connections} connections, ${SOAK_S} s): ${soak.ratePerSecond.toFixed(1)} req/s, statuses ${JSON.stringify(soak.byStatus)}, accepted p99 ${soak.accepted.p99} ms`,
    `RSS: start ${report.rss.startMiB.toFixed(1)} MiB, after overload ${report.rss.afterOverloadMiB.toFixed(1)} MiB, after soak ${report.rss.afterSoakMiB.toFixed(1)} MiB; soak peak middle third ${firstHalfMax} MiB, last third ${secondHalfMax} MiB: ${levelsOff ? 'levels off' : 'STILL GROWING'}`,
    `SIGTERM: ${shutdown.sent} sent, ${shutdown.answered200} answered 200, ${shutdown.lost} lost, exit code ${shutdown.exitCode}`,
    ...(attack ? attackLines(attack) : []),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  const failed = unexpected.length > 0 || overload.errors > 0 || overload.timeouts > 0 || !levelsOff || shutdown.lost > 0 || shutdown.exitCode !== 0;
  if (failed) {
    process.stderr.write(`stress: FAILED (unexpected statuses ${unexpected.join(',') || 'none'})\n`);
    process.exitCode = 1;
  }
}

await main();
