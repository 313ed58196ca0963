// Upstream hub ids through resolveModel and the CLI: the checkpoint is downloaded from a hub stand-in on loopback,
// converted by Node with the test templates, cached, and answers like the exporter's folder for the same checkpoint,
// with no Python on PATH.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';

import { ConversionError } from '../../dist/src/errors/conversion-error.js';
import { ModelNotFoundError } from '../../dist/src/errors/model-not-found-error.js';
import { readManifest } from '../../dist/src/models/manifest.js';
import { resolveModel } from '../../dist/src/models/resolve-model.js';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import { HubStandIn } from '../helpers/hub-stand-in.js';
import { describeUpstream, upstreamPath } from '../upstream/upstream-output.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const image = path.join(root, 'test', 'fixtures', 'images', 'truck.jpg');
const BLIP_REPO = 'test-org/blip-tiny-upstream';
const VLE_REPO = 'test-org/vle-small-upstream';

describeUpstream('convert', 'resolveModel with upstream checkpoint ids', () => {
  const hub = new HubStandIn();
  const templates = upstreamPath('convert', 'templates');
  const blipCase = upstreamPath('convert', 'cases', 'blip-safetensors');
  const vleCase = upstreamPath('convert', 'cases', 'vle-bin');
  let scratch: string;
  let cacheDir: string;

  beforeAll(async () => {
    await hub.start();
    await hub.serve(BLIP_REPO, path.join(blipCase, 'checkpoint'));
    await hub.serve(VLE_REPO, path.join(vleCase, 'checkpoint'));
    await hub.serve('test-org/not-a-vision-model', undefined, {}, { 'config.json': JSON.stringify({ model_type: 'bert' }), 'model.safetensors': Buffer.alloc(16) });
    scratch = await mkdtemp(path.join(tmpdir(), 'vqa-llm-upstream-'));
  });
  afterAll(async () => {
    await hub.stop();
    await rm(scratch, { recursive: true, force: true });
  });
  beforeEach(async () => {
    cacheDir = await mkdtemp(path.join(scratch, 'cache-'));
    hub.clearRequests();
  });

  const options = () => ({ cacheDir, hubUrl: hub.endpoint, templates, modelsDir: path.join(scratch, 'no-models') });

  it('should download and convert a BLIP checkpoint that captions like the exporter folder of the same checkpoint', async () => {
    const events: string[] = [];
    const folder = await resolveModel(BLIP_REPO, { ...options(), onProgress: (event) => events.push(`${event.status}:${event.task}`) });

    const manifest = await readManifest(folder);
    expect(manifest.kind).toBe('blip-captioner');
    expect(manifest.source?.checkpoint).toBe(BLIP_REPO);
    expect(manifest.source?.revision).toMatch(/^[0-9a-f]{40}$/);
    expect(events).toContain(`start:download:${BLIP_REPO}`);
    expect(events).toContain('ready:convert:blip-tiny-upstream');
    // The downloaded checkpoint is not kept beside its converted copy.
    const snapshots = path.join(cacheDir, 'hub-snapshots');
    const left = await readdir(snapshots, { recursive: true }).catch(() => []);
    expect(left.filter((entry) => String(entry).endsWith('model.safetensors'))).toEqual([]);

    const converted = await BlipCaptioner.load(folder, { workers: 0 });
    const exported = await BlipCaptioner.load(path.join(blipCase, 'model'), { workers: 0 });
    try {
      const bytes = await readFile(image);
      const [ours, theirs] = await Promise.all([converted.caption(bytes, { maxNewTokens: 8 }), exported.caption(bytes, { maxNewTokens: 8 })]);
      expect(ours.caption).toBe(theirs.caption);
    } finally {
      await converted.dispose();
      await exported.dispose();
    }
  });

  it('should find the converted folder again without a request, offline included', async () => {
    const first = await resolveModel(BLIP_REPO, options());
    hub.clearRequests();
    expect(await resolveModel(BLIP_REPO, options())).toBe(first);
    expect(await resolveModel(BLIP_REPO, { ...options(), offline: true })).toBe(first);
    expect(hub.requests).toEqual([]);
  });

  it('should refuse to download an upstream checkpoint offline, naming the way out', async () => {
    const error = await resolveModel(VLE_REPO, { ...options(), offline: true }).catch((caught: unknown) => caught);
    expect(ModelNotFoundError.isInstance(error)).toBe(true);
    expect((error as Error & { hint?: string }).hint).toContain(`vqa-llm models fetch ${VLE_REPO}`);
    expect(hub.requests).toEqual([]);
  });

  it('should convert a VLE checkpoint (pytorch_model.bin + spm.model) whose top answers equal the exporter folder', async () => {
    const folder = await resolveModel(VLE_REPO, { ...options(), kind: 'vle-vqa' });
    const converted = await VleVqa.load(folder, { workers: 0 });
    const exported = await VleVqa.load(path.join(vleCase, 'model'), { workers: 0 });
    try {
      const bytes = await readFile(image);
      for (const question of ['What color is the truck?', 'How many wheels does it have?']) {
        const [ours, theirs] = await Promise.all([converted.candidates(bytes, question, { topK: 5 }), exported.candidates(bytes, question, { topK: 5 })]);
        expect(ours.candidates.map((candidate) => candidate.answer)).toEqual(theirs.candidates.map((candidate) => candidate.answer));
        ours.candidates.forEach((candidate, index) => expect(candidate.score).toBeCloseTo(theirs.candidates[index]!.score, 5));
      }
    } finally {
      await converted.dispose();
      await exported.dispose();
    }
  });

  it('should say that a repository is neither a published folder nor a BLIP or VLE checkpoint', async () => {
    const error = await resolveModel('test-org/not-a-vision-model', options()).catch((caught: unknown) => caught);
    expect(ConversionError.isInstance(error)).toBe(true);
    expect((error as ConversionError).reason).toBe('unsupported_model');
  });

  it('should answer with `ask` on upstream ids with no python3 on PATH', async () => {
    // PATH holds node and nothing else: a converter that shelled out to Python would fail here.
    const bin = path.join(scratch, 'bin-node-only');
    await mkdir(bin, { recursive: true });
    await symlink(process.execPath, path.join(bin, 'node')).catch(() => undefined);
    const env = {
      PATH: bin,
      HOME: scratch,
      HF_ENDPOINT: hub.endpoint,
      VQA_LLM_CACHE: cacheDir,
      VQA_LLM_TEMPLATES: templates,
      VQA_LLM_MODELS: path.join(scratch, 'no-models'),
    };
    const cli = path.join(root, 'bin', 'vqa-llm.js');
    const args = [cli, 'ask', image, 'What color is the truck?', '--caption-model', BLIP_REPO, '--vqa-model', VLE_REPO, '--llm', 'none', '--json'];
    const { stdout, stderr } = await run(process.execPath, args, { cwd: scratch, env, timeout: 120_000 });
    const answer = JSON.parse(stdout) as { answer: string; source: string; candidates: { answer: string }[] };
    expect(answer.source).toBe('vqa');
    expect(answer.candidates.length).toBeGreaterThan(0);
    expect(stderr).toMatch(/Downloading test-org\/blip-tiny-upstream: [\d.]+ [kM]?B/);

    // Offline afterwards, from the same cache: the converted folders answer the same.
    const again = await run(process.execPath, [...args, '--offline'], { cwd: scratch, env, timeout: 120_000 });
    expect(JSON.parse(again.stdout).answer).toBe(answer.answer);
    await writeFile(path.join(scratch, 'ask.json'), stdout);
  });
});
