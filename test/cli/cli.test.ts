import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VleVqa } from '../../dist/src/runtime/vle-vqa.js';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { fixtureImage, modelsDir, root, tinyBlip, tinyVle } from '../helpers/fixtures.js';

const run = promisify(execFile);
const cli = join(root, 'bin', 'vqa-llm.js');
const tiny = ['--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle'];

async function vqaLlm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('vqa-llm CLI', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-cli-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('should print the same candidates as the library, as JSON', async () => {
    const { code, stdout } = await vqaLlm('candidates', fixtureImage('fishing.jpg'), "What is in the man's hand?", ...tiny, '--top-k', '3', '--json');
    expect(code).toBe(0);
    const printed = JSON.parse(stdout) as { candidates: { answer: string; score: number }[] };
    const vqa = await VleVqa.load(tinyVle, { workers: 0 });
    const expected = await vqa.candidates(fixtureImage('fishing.jpg'), "What is in the man's hand?", { topK: 3 });
    await vqa.dispose();
    expect(printed.candidates).toEqual(expected.candidates);
  });

  it('should print the same caption as the library, as JSON and as text', async () => {
    const captioner = await BlipCaptioner.load(tinyBlip, { workers: 0 });
    const expected = await captioner.caption(fixtureImage('truck.jpg'), { numBeams: 2, prefix: 'a picture of' });
    await captioner.dispose();
    const json = await vqaLlm('caption', fixtureImage('truck.jpg'), ...tiny, '--beams', '2', '--prefix', 'a picture of', '--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ caption: expected.caption });
    const text = await vqaLlm('caption', fixtureImage('truck.jpg'), ...tiny, '--beams', '2', '--prefix', 'a picture of');
    expect(text.stdout.trim()).toBe(expected.caption);
  });

  it('should exit non-zero with a message naming a missing image', async () => {
    const { code, stderr, stdout } = await vqaLlm('candidates', join(scratch, 'nope.jpg'), 'What?', ...tiny);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toContain('nope.jpg');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('should exit non-zero for bytes that are not an image', async () => {
    const fake = join(scratch, 'text.jpg');
    await writeFile(fake, 'hello, I am not a JPEG');
    const { code, stderr } = await vqaLlm('caption', fake, ...tiny);
    expect(code).toBe(1);
    expect(stderr).toMatch(/^error: /);
  });

  it('should name the models folder and the setting when a model is missing', async () => {
    const { code, stderr } = await vqaLlm('caption', fixtureImage('truck.jpg'), '--models', scratch, '--caption-model', 'no-such-model');
    expect(code).toBe(1);
    expect(stderr).toContain('no-such-model');
    expect(stderr).toMatch(/--models|VQA_LLM_MODELS/);
  });

  it('should refuse an empty question and a bad --top-k', async () => {
    const empty = await vqaLlm('candidates', fixtureImage('truck.jpg'), '  ', ...tiny);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/question is empty/i);
    const topK = await vqaLlm('candidates', fixtureImage('truck.jpg'), 'What?', ...tiny, '--top-k', 'zero');
    expect(topK.code).not.toBe(0);
    expect(topK.stderr).toContain('--top-k');
  });

  it('should list the test models and verify them by checksum and one inference', async () => {
    const list = await vqaLlm('models', 'list', '--models', modelsDir, '--json');
    expect(list.code).toBe(0);
    const listed = JSON.parse(list.stdout) as { models: { folder: string; kind: string; status: string }[] };
    expect(listed.models.map((model) => [model.folder, model.kind, model.status])).toEqual([
      ['tiny-blip', 'blip-captioner', 'ok'],
      ['tiny-vle', 'vle-vqa', 'ok'],
    ]);
    const verify = await vqaLlm('models', 'verify', 'tiny-blip', 'tiny-vle', '--models', modelsDir, '--json');
    expect(verify.code).toBe(0);
    const verified = JSON.parse(verify.stdout) as { verified: { model: string; checksums: string }[] };
    expect(verified.verified.map((entry) => entry.model)).toEqual(['tiny-blip', 'tiny-vle']);
  });
});
