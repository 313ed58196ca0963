import { execFile, spawn, spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
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

/** Runs the CLI with `input` on its stdin (then closed), as a pipe would. */
function vqaLlmWithInput(input: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

/** An error the way the CLI prints every error: one line, no stack trace. */
function expectOneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line.startsWith('error: '));
  expect(lines).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
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

  it('should name --top-k, not the library option, when it is above what the VQA model knows', async () => {
    for (const command of [['candidates', fixtureImage('truck.jpg'), 'What?'], ['ask', fixtureImage('truck.jpg'), 'What?', '--llm', 'none']]) {
      const { code, stderr } = await vqaLlm(...command, ...tiny, '--top-k', '1000');
      expect(code).toBe(1);
      const line = expectOneLineError(stderr);
      expect(line).toContain('--top-k');
      expect(line).not.toContain('topK');
    }
  });

  it('should say that a VQA folder given as the caption model is a VQA model', async () => {
    for (const command of [['caption', fixtureImage('truck.jpg')], ['ask', fixtureImage('truck.jpg'), 'What?', '--llm', 'none']]) {
      const { code, stderr } = await vqaLlm(...command, '--models', modelsDir, '--caption-model', 'tiny-vle', '--vqa-model', 'tiny-vle');
      expect(code).toBe(1);
      const line = expectOneLineError(stderr);
      expect(line).toMatch(/holds a vle-vqa model .* where a blip-captioner model is needed/);
      expect(line).toContain('--caption-model');
    }
  });

  it('should print one line naming the flag when an eval input file is missing', async () => {
    const run = await vqaLlm('eval', '--dataset', join(scratch, 'missing.jsonl'), '--output', join(scratch, 'out.jsonl'), ...tiny, '--llm', 'none');
    expect(run.code).toBe(1);
    expect(expectOneLineError(run.stderr)).toBe(`error: --dataset ${join(scratch, 'missing.jsonl')}: no such file.`);
    const score = await vqaLlm('eval', 'score', '--predictions', join(scratch, 'missing.jsonl'), '--annotations', join(root, 'test', 'fixtures', 'eval', 'questions.jsonl'));
    expect(score.code).toBe(1);
    expect(expectOneLineError(score.stderr)).toContain('--predictions');
  });

  it('should print one line naming --port when the port is in use', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as AddressInfo;
    try {
      const { code, stderr } = await vqaLlm('serve', '--port', String(port), ...tiny, '--llm', 'none', '--log-level', 'silent');
      expect(code).toBe(1);
      const line = expectOneLineError(stderr);
      expect(line).toContain(`Port ${port} on 127.0.0.1`);
      expect(line).toContain('in use');
      expect(line).toContain('--port');
    } finally {
      blocker.close();
    }
  });

  it('should say what to install when models export finds no Python', async () => {
    const noPython = await vqaLlm('models', 'export', 'Salesforce/blip-image-captioning-base', '--python', join(scratch, 'no-such-python3'), '--out', join(scratch, 'blip'));
    expect(noPython.code).toBe(1);
    const line = expectOneLineError(noPython.stderr);
    expect(line).toContain('no-such-python3');
    expect(line).toContain('pip install -r models/requirements.txt');
    expect(line).toContain('npm run fixtures:upstream');
  });

  it.skipIf(spawnSync('python3', ['--version']).status !== 0)('should name the modules a Python without site-packages lacks', async () => {
    // python3 -S: the interpreter without site-packages, so torch is missing wherever the test runs.
    const bare = join(scratch, 'bare-python');
    await writeFile(bare, '#!/bin/sh\nexec python3 -S "$@"\n', { mode: 0o755 });
    const { code, stderr } = await vqaLlm('models', 'export', 'hfl/vle-base-for-vqa', '--python', bare, '--int8', '--out', join(scratch, 'vle'));
    expect(code).toBe(1);
    const line = expectOneLineError(stderr);
    expect(line).toMatch(/needs torch, numpy, onnx, safetensors, transformers, tokenizers, sentencepiece, onnxruntime, huggingface_hub, which .*bare-python cannot import/);
    expect(line).toContain('-m pip install -r models/requirements.txt');
  });

  it('should answer questions piped to chat, each answer once, also without an LLM', async () => {
    const { code, stdout, stderr } = await vqaLlmWithInput('How many people are there?\n/reset\nWhat color is the truck?\n', 'chat', fixtureImage('truck.jpg'), ...tiny, '--llm', 'none');
    expect(stderr).not.toContain('error');
    expect(code).toBe(0);
    const answers = stdout.split('\n').map((line) => line.replace(/^(\? )+/, '')).filter((line) => line !== '');
    expect(answers).toHaveLength(2);
    // The fallback sentence streams as one delta; it must not be printed again from the result.
    for (const answer of answers) expect(answer).toMatch(/^[^.]+\.$/);
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
    // Local files are checked, not downloaded.
    expect(verify.stderr).toContain('Checking onnx/vision_encoder.onnx');
    expect(verify.stderr).not.toContain('Downloading');
    const verified = JSON.parse(verify.stdout) as { verified: { model: string; checksums: string }[] };
    expect(verified.verified.map((entry) => entry.model)).toEqual(['tiny-blip', 'tiny-vle']);
  });
});
