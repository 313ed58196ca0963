import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ModelIntegrityError } from '../../dist/src/errors/model-integrity-error.js';
import { downloadHubSnapshot } from '../../dist/src/models/hub/index.js';
import type { ProgressEvent } from '../../dist/src/types.js';
import { HubStandIn, type HubRequest, type ServedRevision } from '../helpers/hub-stand-in.js';
import { blipLikeRepo, expectProgressContract, listFiles, rejection, temporaryCache } from './hub-fixtures.js';

const BLIP = 'test-org/blip-like';
const WEIGHTS = 'model.safetensors';
const BLIP_WANTED = ['config.json', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'];

/** Resolves once `condition` holds, checking every 20 ms (what the test waits for, not how long). */
async function until(condition: () => boolean | Promise<boolean>, what: string, limitMs = 20_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve };
}

/** Runs downloadHubSnapshot in another Node process; it prints the snapshot as JSON. */
function runChild(options: Record<string, unknown>): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
  const script = `
    const { downloadHubSnapshot } = await import(${JSON.stringify(pathToFileURL(path.resolve('dist/src/models/hub/index.js')).href)});
    process.stdout.write(JSON.stringify(await downloadHubSnapshot(JSON.parse(process.argv[1]))));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, done };
}

describe('downloadHubSnapshot (interruptions)', () => {
  const hub = new HubStandIn();
  const blip = blipLikeRepo(4 << 20);
  const weights = blip[WEIGHTS]!;
  let served: ServedRevision;
  let cacheDir: string;
  const base = () => ({ endpoint: hub.endpoint, cacheDir, repo: BLIP, token: undefined, retry: { minDelayMs: 1, maxDelayMs: 1000 } });
  const weightRequests = (): HubRequest[] => hub.requests.filter((entry) => entry.route === 'cdn' && entry.file === WEIGHTS);
  const repoRoot = () => path.join(cacheDir, 'hub-snapshots', new URL(hub.endpoint).host.replace(':', '_'), ...BLIP.split('/'));
  const partialOfWeights = () => path.join(repoRoot(), 'incomplete', `${served.files.find((file) => file.path === WEIGHTS)!.sha256}.incomplete`);

  beforeAll(async () => {
    await hub.start();
    served = await hub.serve(BLIP, undefined, {}, blip);
  });
  afterAll(async () => {
    await hub.stop();
  });
  afterEach(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    cacheDir = await temporaryCache();
    hub.clearRequests();
    hub.clearFaults();
  });

  it('should resume a cut connection with a Range request for the bytes it lacks', async () => {
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'cut', afterBytes: 1_500_000 } });
    const events: ProgressEvent[] = [];
    const snapshot = await downloadHubSnapshot({ ...base(), onProgress: (event) => events.push(event) });

    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
    const requests = weightRequests();
    expect(requests.map((entry) => entry.status)).toEqual([200, 206]);
    expect(requests[0]!.headers.range).toBeUndefined();
    // It continues from the bytes it had written: at most what was sent before the cut (the client may lose the
    // last chunks still in flight), and the second answer carries exactly the rest.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1]!.headers.range as string)![1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_500_000);
    expect(requests[1]!.bytes).toBe(weights.length - resumedAt);
    expectProgressContract(events, BLIP_WANTED.reduce((sum, file) => sum + blip[file]!.length, 0));
  });

  it('should start a file over cleanly when the server ignores Range, with progress that still never goes backwards', async () => {
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'cut', afterBytes: 2_000_000 } });
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'ignore-range' }, skip: 1 });
    const events: ProgressEvent[] = [];
    const snapshot = await downloadHubSnapshot({ ...base(), onProgress: (event) => events.push(event) });

    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
    const requests = weightRequests();
    expect(requests.map((entry) => entry.status)).toEqual([200, 200]);
    expect(requests[1]!.headers.range).toMatch(/^bytes=\d+-$/);
    expect(requests[1]!.bytes).toBe(weights.length);
    expectProgressContract(events, BLIP_WANTED.reduce((sum, file) => sum + blip[file]!.length, 0));
  });

  it('should drop a stalled response and resume it', async () => {
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'stall', afterBytes: 1_000_000 } });
    const snapshot = await downloadHubSnapshot({ ...base(), stallTimeoutMs: 300 });

    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
    expect(weightRequests().map((entry) => entry.headers.range)).toEqual([undefined, expect.stringMatching(/^bytes=\d+-$/)]);
  });

  it('should reject a corrupted LFS file by its sha256, name it, and keep nothing of it', async () => {
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'corrupt', offset: 3_000_001 } });
    const error = await rejection(downloadHubSnapshot(base()));

    expect(ModelIntegrityError.isInstance(error) && error.reason).toBe('checksum_mismatch');
    expect(error.message).toContain(WEIGHTS);
    expect(error.message).toContain(served.files.find((file) => file.path === WEIGHTS)!.sha256);
    expect(existsSync(partialOfWeights())).toBe(false);
    expect(existsSync(path.join(repoRoot(), 'snapshots', served.commit, WEIGHTS))).toBe(false);

    // The next run downloads it anew and succeeds.
    const snapshot = await downloadHubSnapshot(base());
    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
  });

  it('should reject a corrupted small file in git by its blob id', async () => {
    hub.inject({ route: 'resolve-cache', file: 'config.json', fault: { type: 'corrupt', offset: 3 } });
    const error = await rejection(downloadHubSnapshot(base()));

    expect(ModelIntegrityError.isInstance(error) && error.reason).toBe('checksum_mismatch');
    expect(error.message).toMatch(/^config\.json has git blob id/);
  });

  it('should keep the partial of an aborted run and let the next call continue it', async () => {
    const hold = deferred();
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'pause', afterBytes: 2_500_000, until: hold.promise } });
    const controller = new AbortController();
    const first = downloadHubSnapshot({ ...base(), signal: controller.signal });
    await until(async () => existsSync(partialOfWeights()) && (await stat(partialOfWeights())).size === 2_500_000, 'the partial file to hold 2,500,000 bytes');
    controller.abort(new Error('user pressed ctrl-c'));
    await expect(first).rejects.toThrow('user pressed ctrl-c');
    hold.resolve();
    expect((await stat(partialOfWeights())).size).toBe(2_500_000);
    expect(await listFiles(path.join(repoRoot(), 'locks'))).toEqual([]);

    const events: ProgressEvent[] = [];
    const snapshot = await downloadHubSnapshot({ ...base(), onProgress: (event) => events.push(event) });
    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
    expect(weightRequests().at(-1)!.headers.range).toBe('bytes=2500000-');
    // The second run starts where the first stopped: its first progress counts the kept bytes.
    const firstProgress = events.find((event) => event.status === 'progress' && event.file === WEIGHTS) as { loaded: number };
    expect(firstProgress.loaded).toBeGreaterThanOrEqual(2_500_000);
    // Files come in path order: config.json was finished, the weights and what follows them were still to come.
    const stillToCome = BLIP_WANTED.filter((file) => file >= WEIGHTS);
    expectProgressContract(events, stillToCome.reduce((sum, file) => sum + blip[file]!.length, 0));
  });

  it('should let two concurrent calls share one download without corrupting it', async () => {
    const hold = deferred();
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'pause', afterBytes: 1_000_000, until: hold.promise } });
    const first = downloadHubSnapshot(base());
    await until(() => weightRequests().some((entry) => entry.bytes >= 1_000_000), 'the first call to be mid-file');
    const second = downloadHubSnapshot(base());
    await until(() => hub.requests.filter((entry) => entry.route === 'model-info').length === 2, 'the second call to list the repo');
    // The second call is now waiting on the lock (or about to): let the first finish.
    await new Promise((resolve) => setTimeout(resolve, 200));
    hold.resolve();
    const [one, two] = await Promise.all([first, second]);

    expect(two).toEqual(one);
    expect((await readFile(path.join(one.folder, WEIGHTS))).equals(weights)).toBe(true);
    expect(weightRequests().reduce((sum, entry) => sum + entry.bytes, 0)).toBe(weights.length);
    expect(await listFiles(path.join(repoRoot(), 'locks'))).toEqual([]);
  });

  it('should let two processes download the same repo at once, one waiting for the other', async () => {
    const hold = deferred();
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'pause', afterBytes: 1_000_000, until: hold.promise } });
    const children = [0, 1].map(() => runChild({ endpoint: hub.endpoint, cacheDir, repo: BLIP }));
    try {
      await until(() => weightRequests().some((entry) => entry.bytes >= 1_000_000), 'one process to be mid-file');
      await until(() => hub.requests.filter((entry) => entry.route === 'model-info').length === 2, 'both processes to list the repo');
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      hold.resolve();
    }
    const results = await Promise.all(children.map((child) => child.done));

    expect(results.map((result) => result.code)).toEqual([0, 0]);
    expect(results[0]!.stdout).toBe(results[1]!.stdout);
    const folder = (JSON.parse(results[0]!.stdout) as { folder: string }).folder;
    expect((await readFile(path.join(folder, WEIGHTS))).equals(weights)).toBe(true);
    expect(weightRequests().reduce((sum, entry) => sum + entry.bytes, 0)).toBe(weights.length);
    expect(await listFiles(path.join(repoRoot(), 'locks'))).toEqual([]);
  });

  it('should take over a lock that another machine stopped refreshing, and wait on one it still refreshes', async () => {
    const lock = path.join(repoRoot(), 'locks', `${served.commit}.lock`);
    await mkdir(path.dirname(lock), { recursive: true });
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'another-machine', nonce: 'theirs' }));

    // Fresh: this call waits for it, until aborted.
    const controller = new AbortController();
    const waiting = downloadHubSnapshot({ ...base(), signal: controller.signal });
    await until(() => hub.requests.some((entry) => entry.route === 'model-info'), 'the listing');
    await new Promise((resolve) => setTimeout(resolve, 300));
    controller.abort(new Error('gave up waiting'));
    await expect(waiting).rejects.toThrow('gave up waiting');
    expect(hub.downloads(BLIP)).toEqual([]);

    // Two minutes without a heartbeat: taken over.
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);
    const snapshot = await downloadHubSnapshot(base());
    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it('should resume after its process was killed mid-download, taking over the dead process lock', async () => {
    const hold = deferred();
    hub.inject({ route: 'cdn', file: WEIGHTS, fault: { type: 'pause', afterBytes: 3_000_000, until: hold.promise } });
    const { child, done: exited } = runChild({ endpoint: hub.endpoint, cacheDir, repo: BLIP });
    try {
      await until(async () => existsSync(partialOfWeights()) && (await stat(partialOfWeights())).size === 3_000_000, 'the child to hold 3,000,000 bytes');
      expect(await listFiles(path.join(repoRoot(), 'locks'))).toEqual([`${served.commit}.lock`]);
    } finally {
      child.kill('SIGKILL');
      await exited;
      hold.resolve();
    }

    const snapshot = await downloadHubSnapshot(base());
    expect((await readFile(path.join(snapshot.folder, WEIGHTS))).equals(weights)).toBe(true);
    expect(weightRequests().at(-1)!.headers.range).toBe('bytes=3000000-');
    expect(await listFiles(path.join(repoRoot(), 'locks'))).toEqual([]);
  });
});
