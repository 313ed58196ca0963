// The attack mix of the stress run (issue 13): while ordinary clients keep asking, for STRESS_ATTACK_S seconds at once:
// decode bombs (a progressive JPEG of 2,080 scans, a TIFF of 20,000 directories), JSON nested a million levels deep,
// streaming clients that never read, bodies that never finish, and a flood of requests past capacity (503s). The
// server's event-loop delay, RSS and open descriptors are sampled from /metrics every second.
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';

export interface AttackReport {
  seconds: number;
  ordinary: { sent: number; byStatus: Record<string, number>; p50Ms: number; p99Ms: number; maxMs: number };
  healthz: { sent: number; failed: number; p99Ms: number; maxMs: number };
  attacks: Record<string, Record<string, number>>;
  nonReadingStreams: { opened: number; cutByServer: number };
  unfinishedBodies: { opened: number; answered: Record<string, number> };
  /** Per part of the mix, and at the end once every attacker has gone. */
  server: { hostile: ServerFigures; flood: ServerFigures; slowBodies: ServerFigures; rssEndMiB: number; openFdsEnd: number };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function count(into: Record<string, number>, key: string | number): void {
  into[key] = (into[key] ?? 0) + 1;
}

function chat(imageUrl: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: 'What is in the picture?' }, { type: 'image_url', image_url: { url: imageUrl } }] }], ...extra });
}

/** A TIFF of `directories` 1x1 pages in one chain (libtiff walks them all to count pages). */
function manyDirectoryTiff(directories: number): Buffer {
  const size = 2 + 9 * 12 + 4;
  const buffer = Buffer.alloc(10 + directories * size);
  buffer.write('II*\0', 0, 'latin1');
  buffer.writeUInt32LE(10, 4);
  buffer[8] = 128;
  for (let index = 0; index < directories; index += 1) {
    const at = 10 + index * size;
    buffer.writeUInt16LE(9, at);
    [[256, 3, 1], [257, 3, 1], [258, 3, 8], [259, 3, 1], [262, 3, 1], [273, 4, 8], [277, 3, 1], [278, 3, 1], [279, 4, 1]].forEach(([tag, type, value], entry) => {
      const offset = at + 2 + entry * 12;
      buffer.writeUInt16LE(tag!, offset);
      buffer.writeUInt16LE(type!, offset + 2);
      buffer.writeUInt32LE(1, offset + 4);
      if (type === 3) buffer.writeUInt16LE(value!, offset + 8);
      else buffer.writeUInt32LE(value!, offset + 8);
    });
    buffer.writeUInt32LE(index + 1 < directories ? at + size : 0, at + 2 + 9 * 12);
  }
  return buffer;
}

async function post(url: string, body: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  try {
    const response = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await response.arrayBuffer();
    return { status: response.status, ms: performance.now() - started };
  } catch {
    return { status: -1, ms: performance.now() - started };
  }
}

async function sample(url: string): Promise<{ lagMax: number; lagP99: number; rss: number; fds: number } | undefined> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const read = (name: string): number => Number(new RegExp(`^${name} ([\\d.e+-]+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { lagMax: read('nodejs_eventloop_lag_max_seconds'), lagP99: read('nodejs_eventloop_lag_p99_seconds'), rss: read('vqa_llm_rss_bytes'), fds: read('process_open_fds') };
  } catch {
    return undefined;
  }
}

/**
 * A streaming request whose client reads nothing for 8 s (past the 5 s deadline and the second the server allows the
 * last event): resolves true when, once it reads, it finds the server has already ended the response.
 */
function nonReadingStream(url: string, body: string): Promise<boolean> {
  const target = new URL(url);
  return new Promise((resolve) => {
    let ended = false;
    const socket: Socket = connect(Number(target.port), target.hostname, () => {
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
      socket.pause();
      setTimeout(() => {
        socket.resume();
        setTimeout(() => {
          socket.destroy();
          resolve(ended);
        }, 2000);
      }, 8000);
    });
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('end', () => (ended = true));
  });
}

/** A request announcing 20 MB of body and sending 1 KB; resolves with the status the server answers before the rest. */
function unfinishedBody(url: string, held: (() => void)[]): Promise<number> {
  const target = new URL(url);
  return new Promise((resolve) => {
    const outgoing = request({ host: target.hostname, port: target.port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json', 'content-length': '20000000' } }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    });
    outgoing.on('error', () => resolve(-1));
    outgoing.write(`{"model":"vqa-llm","messages":[${' '.repeat(1024)}`);
    held.push(() => outgoing.destroy());
  });
}

interface Sample {
  lagMax: number;
  lagP99: number;
  rss: number;
  fds: number;
}

/** What the server went through during one part of the mix, from its /metrics sampled each second. */
export interface ServerFigures {
  eventLoopDelayMaxMs: number;
  eventLoopDelayP99MaxMs: number;
  rssMaxMiB: number;
  openFdsMax: number;
  samples: number;
}

function figures(samples: Sample[]): ServerFigures {
  const max = (values: number[]): number => {
    const finite = values.filter(Number.isFinite);
    return finite.length === 0 ? Number.NaN : Math.max(...finite);
  };
  return {
    eventLoopDelayMaxMs: Math.round(max(samples.map((entry) => entry.lagMax)) * 1000),
    eventLoopDelayP99MaxMs: Math.round(max(samples.map((entry) => entry.lagP99)) * 1000),
    rssMaxMiB: Number((max(samples.map((entry) => entry.rss)) / 2 ** 20).toFixed(1)),
    openFdsMax: max(samples.map((entry) => entry.fds)),
    samples: samples.length,
  };
}

function sampler(url: string): { stop(): Promise<ServerFigures> } {
  const samples: Sample[] = [];
  let stopped = false;
  const running = (async () => {
    while (!stopped) {
      const found = await sample(url);
      if (found) samples.push(found);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      return figures(samples);
    },
  };
}

async function forSeconds(seconds: number, loops: number, body: (index: number) => Promise<void>): Promise<void> {
  const until = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: loops }, async (_, index) => {
    while (Date.now() < until) await body(index);
  }));
}

/**
 * Runs the mix against a running server (with a 5 s request deadline) in three parts of `seconds` each:
 *
 * 1. hostile inputs beside one ordinary client and /healthz probes: decode bombs (a JPEG of 2,080 scans, a TIFF of
 *    20,000 directories), JSON a million levels deep, and streaming clients that never read;
 * 2. a flood: the LLM slowed to 1.5 s an answer and ten clients keeping every slot busy, 64 clients asking as fast as
 *    they are refused (503s);
 * 3. 300 requests that announce 20 MB of body, send 1 KB and hold the connection.
 */
export async function runAttackMix(options: { url: string; root: string; seconds: number; ordinaryBodies: string[]; slowLlm(ms: number): void }): Promise<AttackReport> {
  const { url, seconds, ordinaryBodies } = options;
  const manyScans = `data:image/jpeg;base64,${readFileSync(join(options.root, 'test', 'fixtures', 'odd-images', 'many-scans.jpg')).toString('base64')}`;
  const tiff = `data:image/tiff;base64,${manyDirectoryTiff(20_000).toString('base64')}`;
  const deep = `{"model":"vqa-llm","messages":${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`;
  const attacks: Record<string, Record<string, number>> = { jpegScans: {}, tiffDirectories: {}, deepJson: {}, flood: {}, fillers: {} };

  // 1. Hostile inputs beside ordinary clients.
  const ordinary: number[] = [];
  const ordinaryStatus: Record<string, number> = {};
  const health: number[] = [];
  let healthFailed = 0;
  let opened = 0;
  let cut = 0;
  let watch = sampler(url);
  await Promise.all([
    forSeconds(seconds, 1, async (index) => {
      const { status, ms } = await post(url, ordinaryBodies[index % ordinaryBodies.length]!);
      count(ordinaryStatus, status);
      if (status === 200) ordinary.push(ms);
    }),
    forSeconds(seconds, 1, async () => {
      const started = performance.now();
      try {
        if ((await fetch(`${url}/healthz`)).status !== 200) healthFailed += 1;
      } catch {
        healthFailed += 1;
      }
      health.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }),
    forSeconds(seconds, 2, async () => count(attacks.jpegScans!, (await post(url, chat(manyScans))).status)),
    forSeconds(seconds, 2, async () => count(attacks.tiffDirectories!, (await post(url, chat(tiff))).status)),
    forSeconds(seconds, 1, async () => count(attacks.deepJson!, (await post(url, deep)).status)),
    forSeconds(seconds, 4, async (index) => {
      opened += 1;
      if (await nonReadingStream(url, JSON.stringify({ ...(JSON.parse(ordinaryBodies[index]!) as object), stream: true }))) cut += 1;
    }),
  ]);
  const hostile = await watch.stop();

  // 2. The flood.
  options.slowLlm(1500);
  watch = sampler(url);
  await Promise.all([
    forSeconds(seconds, 10, async (index) => count(attacks.fillers!, (await post(url, ordinaryBodies[index]!)).status)),
    forSeconds(seconds, 64, async () => count(attacks.flood!, (await post(url, '{"model":"vqa-llm","messages":[]}')).status)),
  ]);
  const flood = await watch.stop();
  options.slowLlm(0);

  // 3. Bodies that never finish.
  watch = sampler(url);
  const held: (() => void)[] = [];
  const unfinished: Record<string, number> = {};
  const bodies = Array.from({ length: 300 }, () => unfinishedBody(url, held).then((status) => count(unfinished, status)));
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const slowBodies = await watch.stop();
  for (const close of held) close();
  await Promise.race([Promise.all(bodies), new Promise((resolve) => setTimeout(resolve, 1_000))]);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const end = await sample(url);

  const sorted = [...ordinary].sort((a, b) => a - b);
  const healthSorted = [...health].sort((a, b) => a - b);
  return {
    seconds,
    ordinary: { sent: Object.values(ordinaryStatus).reduce((a, b) => a + b, 0), byStatus: ordinaryStatus, p50Ms: Math.round(percentile(sorted, 50)), p99Ms: Math.round(percentile(sorted, 99)), maxMs: Math.round(sorted.at(-1) ?? Number.NaN) },
    healthz: { sent: health.length, failed: healthFailed, p99Ms: Math.round(percentile(healthSorted, 99)), maxMs: Math.round(healthSorted.at(-1) ?? Number.NaN) },
    attacks,
    nonReadingStreams: { opened, cutByServer: cut },
    unfinishedBodies: { opened: bodies.length, answered: unfinished },
    server: { hostile, flood, slowBodies, rssEndMiB: Number(((end?.rss ?? Number.NaN) / 2 ** 20).toFixed(1)), openFdsEnd: end?.fds ?? Number.NaN },
  };
}
