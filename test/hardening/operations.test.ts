import { spawn } from 'node:child_process';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, describe, expect, it } from 'vitest';
import { startVqaServer, type RunningVqaServer } from '../../dist/src/server/vqa-server.js';
import { startFakeOpenAiServer } from '../helpers/fake-openai-server.js';
import { modelsDir, root } from '../helpers/fixtures.js';
import { dataUrl, llmReply, postJson } from '../server/server-helpers.js';
import { chatBody, GatedVision, pngBytes, toDataUrl, until } from './helpers.js';

interface ContextView {
  readiness: { draining: boolean; check(): Promise<{ ready: boolean; reason?: string }> };
  queue: { state: { running: number; waiting: number } };
}

let server: RunningVqaServer | undefined;
afterEach(async () => {
  await server?.close().catch(() => undefined);
  server = undefined;
});

function contextOf(running: RunningVqaServer): ContextView {
  return (running.app as unknown as { vqaContext: ContextView }).vqaContext;
}

describe('readiness and graceful shutdown', () => {
  it('should fail readiness with "loading" until the first probe inference passes, then pass', async () => {
    const vision = new GatedVision();
    server = await startVqaServer({ vision, llm: 'none', logger: false, web: false, host: '127.0.0.1', port: 0 });
    const loading = await fetch(`${server.url}/readyz`);
    expect(loading.status).toBe(503);
    expect(await loading.json()).toMatchObject({ status: 'not_ready', reason: 'loading' });
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    vision.open();
    await until(async () => (await fetch(`${server!.url}/readyz`)).status === 200);
  });

  it('should fail readiness while draining, refuse new work, and finish in-flight requests before closing', async () => {
    const vision = new GatedVision();
    server = await startVqaServer({ vision, llm: 'none', logger: false, web: false, host: '127.0.0.1', port: 0 });
    const context = contextOf(server);
    const body = chatBody(toDataUrl(await pngBytes()));
    const inFlight = [postJson(`${server.url}/v1/chat/completions`, body), postJson(`${server.url}/v1/chat/completions`, body)];
    await until(() => context.queue.state.running === 2);

    const shutdown = server.shutdown({ graceMs: 10_000 });
    expect(context.readiness.draining).toBe(true);
    expect(await context.readiness.check()).toEqual({ ready: false, reason: 'draining' });
    // The port no longer accepts: a new client cannot connect at all.
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();

    vision.open();
    const results = await Promise.all(inFlight);
    expect(results.map((result) => result.status)).toEqual([200, 200]);
    expect(await shutdown).toEqual({ drained: true });
  });

  it('should answer 503 shutting_down to requests still running or queued when the grace period ends', async () => {
    const vision = new GatedVision();
    server = await startVqaServer({ vision, llm: 'none', logger: false, web: false, host: '127.0.0.1', port: 0, maxConcurrency: 1 });
    const context = contextOf(server);
    const body = chatBody(toDataUrl(await pngBytes()));
    const running = postJson(`${server.url}/v1/chat/completions`, body);
    await until(() => context.queue.state.running === 1);
    const queued = postJson(`${server.url}/v1/chat/completions`, { ...body, stream: true });
    await until(() => context.queue.state.waiting === 1);
    expect(await server.shutdown({ graceMs: 200 })).toEqual({ drained: false });
    for (const response of await Promise.all([running, queued])) {
      expect(response.status).toBe(503);
      expect(response.body.error.code).toBe('shutting_down');
      expect(response.headers.get('retry-after')).toBe('1');
    }
  });
});

describe('image decoders', () => {
  it('should refuse SVG, PDF and other unneeded formats in sharp itself once a server exists', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><image href="http://169.254.169.254/x"/></svg>');
    const ppm = Buffer.concat([Buffer.from('P6\n2 2\n255\n'), Buffer.alloc(12, 200)]);
    server = await startVqaServer({ vision: new GatedVision({ open: true }), llm: 'none', logger: false, web: false, host: '127.0.0.1', port: 0 });
    await expect(sharp(svg).metadata()).rejects.toThrow(/unsupported image format/);
    await expect(sharp(ppm).metadata()).rejects.toThrow(/unsupported image format/);
    // The formats the pipeline needs still load.
    expect((await sharp(await pngBytes()).metadata()).format).toBe('png');
    expect((await sharp(await sharp(await pngBytes()).jpeg().toBuffer()).metadata()).format).toBe('jpeg');
  });
});

describe('vqa-llm serve under load, on SIGTERM', () => {
  it('should finish every accepted request, refuse new connections, and exit 0', async () => {
    // Each answer drips from the fake LLM for ~0.5 s, so that requests are both in flight and queued at SIGTERM.
    const llm = await startFakeOpenAiServer([{ kind: 'drip', content: llmReply('fishing pole', 'He holds a pole.'), intervalMs: 12 }]);
    const child = spawn(
      process.execPath,
      [join(root, 'bin', 'vqa-llm.js'), 'serve', '--port', '0', '--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', '--llm', 'openai', '--llm-base-url', llm.baseUrl, '--llm-model', 'fake', '--max-concurrency', '2', '--max-queue', '64', '--log-level', 'warn'],
      { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1', OPENAI_API_KEY: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr!.on('data', (chunk) => {
          stderr += String(chunk);
          const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
          if (match) resolve(match[1]!);
        });
        child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      const body = chatBody(dataUrl('fishing.jpg'), "What is in the man's hand?");
      const requests = Array.from({ length: 12 }, () => postJson(`${url}/v1/chat/completions`, body).catch((error: unknown) => ({ status: -1, body: String(error), headers: new Headers() })));
      // SIGTERM once the server has accepted all twelve (answered, in flight or queued), so that each one counts.
      const accepted = async (): Promise<number> => {
        const text = await (await fetch(`${url}/metrics`)).text();
        const read = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0);
        return read(/^vqa_llm_queue_depth (\d+)$/m) + read(/^vqa_llm_requests_in_flight (\d+)$/m) + read(/route="\/v1\/chat\/completions",status="200"\} (\d+)/);
      };
      await until(async () => (await accepted()) === 12);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // Signals during the drain are logged and ignored: they neither kill the process nor drop accepted requests.
      await until(() => stderr.includes('SIGTERM, draining'));
      child.kill('SIGTERM');
      child.kill('SIGINT');
      child.kill('SIGHUP');
      await until(() => (stderr.match(/ again, still draining/g) ?? []).length === 3);
      const results = await Promise.all(requests);
      expect(results.map((result) => result.status)).toEqual(new Array(12).fill(200));
      expect(results.every((result) => (result.body as { vqa_llm?: { source?: string } }).vqa_llm?.source === 'llm')).toBe(true);
      expect(await exited).toBe(0);
      expect(stderr).toContain('SIGTERM, draining');
      expect(stderr).toContain('drained, exiting');
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await llm.close();
    }
  });
});
