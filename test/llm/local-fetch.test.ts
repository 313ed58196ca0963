// The embedded LLM's GGUF file from a hub stand-in on loopback: fetched once through the hub client (size, sha256,
// cache), found again offline, chosen by name in a repository of several, and used by `ask --llm local`.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';

import { LocalLlmError } from '../../dist/src/errors/local-llm-error.js';
import { fetchLocalModel } from '../../dist/src/llm/local/fetch-local-model.js';
import { locateLocalModel } from '../../dist/src/llm/local/local-model-path.js';
import { HubStandIn } from '../helpers/hub-stand-in.js';
import { describeGguf, ggufPath } from './local-gguf.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const ONE = 'test-org/tiny-llm-GGUF';
const SEVERAL = 'test-org/several-GGUF';

describeGguf('fetchLocalModel', () => {
  const hub = new HubStandIn();
  let scratch: string;
  let cacheDir: string;
  let tiny: Buffer;

  beforeAll(async () => {
    tiny = await readFile(ggufPath('tiny.gguf'));
    await hub.start();
    await hub.serve(ONE, undefined, {}, { 'tiny-llm-q4_k_m.gguf': tiny, 'README.md': '# tiny' });
    await hub.serve(SEVERAL, undefined, {}, { 'a-f16.gguf': tiny, 'b-q8_0.gguf': tiny });
    scratch = await mkdtemp(path.join(tmpdir(), 'vqa-llm-gguf-'));
  });
  afterAll(async () => {
    await hub.stop();
    await rm(scratch, { recursive: true, force: true });
  });
  beforeEach(async () => {
    cacheDir = await mkdtemp(path.join(scratch, 'cache-'));
    hub.clearRequests();
  });

  const env = () => ({ ...process.env, HF_ENDPOINT: hub.endpoint });

  it('should download the only .gguf file of a repository and find it again offline', async () => {
    const file = await fetchLocalModel({ model: ONE, cacheDir, hubUrl: hub.endpoint, modelsDir: scratch });
    expect((await readFile(file)).equals(tiny)).toBe(true);
    expect(hub.downloads(ONE)).toEqual(['tiny-llm-q4_k_m.gguf']);

    hub.clearRequests();
    const spec = `${ONE}/tiny-llm-q4_k_m.gguf`;
    expect(await fetchLocalModel({ model: spec, cacheDir, hubUrl: hub.endpoint, modelsDir: scratch, offline: true })).toBe(file);
    expect(locateLocalModel({ model: spec, cacheDir, modelsDir: scratch, env: env() })).toMatchObject({ path: file, exists: true });
    expect(hub.requests).toEqual([]);
  });

  it('should name the files to choose from when a repository holds several and no Q4_K_M one', async () => {
    const error = await fetchLocalModel({ model: SEVERAL, cacheDir, hubUrl: hub.endpoint, modelsDir: scratch }).catch((caught: unknown) => caught);
    expect(LocalLlmError.isInstance(error)).toBe(true);
    expect((error as LocalLlmError).reason).toBe('model_not_found');
    expect((error as LocalLlmError & { hint?: string }).hint).toContain('a-f16.gguf');
    const chosen = await fetchLocalModel({ model: `${SEVERAL}/b-q8_0.gguf`, cacheDir, hubUrl: hub.endpoint, modelsDir: scratch });
    expect(path.basename(chosen)).toBe('b-q8_0.gguf');
  });

  it('should fetch with `models fetch`, then answer with `ask --llm local` offline', async () => {
    const cli = path.join(root, 'bin', 'vqa-llm.js');
    const childEnv = { ...env(), VQA_LLM_CACHE: cacheDir, OPENAI_BASE_URL: '', OPENAI_API_KEY: '' };
    const spec = `${ONE}/tiny-llm-q4_k_m.gguf`;
    const fetched = await run(process.execPath, [cli, 'models', 'fetch', spec], { cwd: root, env: childEnv, timeout: 60_000 });
    expect(fetched.stdout.trim()).toMatch(/tiny-llm-q4_k_m\.gguf$/);
    expect(fetched.stderr).toMatch(/Downloading test-org\/tiny-llm-GGUF: [\d.]+ kB/);

    const image = path.join(root, 'test', 'fixtures', 'images', 'fishing.jpg');
    const args = [cli, 'ask', image, "What is in the man's hand?", '--models', path.join(root, 'test', 'fixtures', 'models'), '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle'];
    const llmArgs = ['--llm', 'local', '--llm-model', spec, '--threads', '1', '--offline', '--json'];
    const { stdout } = await run(process.execPath, [...args, ...llmArgs], { cwd: root, env: { ...childEnv, VQA_LLM_OFFLINE: '1' }, timeout: 240_000 });
    const result = JSON.parse(stdout) as { source: string; answer: string };
    expect(result.source).toBe('llm');
    expect(result.answer.length).toBeGreaterThan(0);
  });
});
