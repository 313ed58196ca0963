import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { fixtureImage, modelsDir, root } from '../helpers/fixtures.js';
import { describeGguf, ggufPath } from './local-gguf.js';

const run = promisify(execFile);
const cli = join(root, 'bin', 'vqa-llm.js');
// The tiny vision models, one thread per model (the LLM's too): a shared CI machine spins badly with more.
const tiny = ['--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', '--threads', '1'];

// No endpoint and no local model unless a test names one: the environment of a user who configured nothing.
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, VQA_LLM_OFFLINE: '1', ...extra };
  for (const name of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'VQA_LLM_MODEL', 'VQA_LLM_LOCAL_MODEL', 'VQA_LLM_PROVIDER']) if (!(name in extra)) delete env[name];
  return env;
}

async function vqaLlm(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { cwd: root, env });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-local-cli-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

it('should answer with the VQA model and say how to get the local model when nothing is configured', async () => {
  const { code, stdout, stderr } = await vqaLlm(['ask', fixtureImage('truck.jpg'), 'What is this?', ...tiny, '--json'], cleanEnv({ XDG_DATA_HOME: scratch }));
  expect(stderr).not.toContain('error');
  expect(code).toBe(0);
  const result = JSON.parse(stdout) as { source: string; fallbackReason?: { code: string } };
  expect(result).toMatchObject({ source: 'vqa', fallbackReason: { code: 'llm_disabled' } });
  expect(stderr).toContain('no local model at');
  expect(stderr).toContain('qwen2.5-1.5b-instruct-q4_k_m.gguf');
  expect(stderr).toContain('curl -L');
});

describeGguf('vqa-llm ask with the embedded LLM (tiny vision models, tiny GGUF)', () => {
  it('should answer through the local model with --llm local', async () => {
    const { code, stdout, stderr } = await vqaLlm(['ask', fixtureImage('truck.jpg'), 'What is this?', ...tiny, '--llm', 'local', '--llm-model', ggufPath('tiny.gguf'), '--json'], cleanEnv());
    expect(stderr).not.toContain('error');
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { source: string; answer: string; models: { llm: string }; usage?: { outputTokens: number } };
    expect(result.source).toBe('llm');
    expect(result.answer.length).toBeGreaterThan(0);
    expect(result.models.llm).toBe('vqa-llm tiny');
    expect(result.usage?.outputTokens).toBeGreaterThan(0);
  });

  it('should pick the local model under auto when its file is there and no endpoint is configured', async () => {
    const { code, stdout } = await vqaLlm(['ask', fixtureImage('truck.jpg'), 'What is this?', ...tiny, '--json'], cleanEnv({ VQA_LLM_LOCAL_MODEL: ggufPath('tiny.gguf') }));
    expect(code).toBe(0);
    expect((JSON.parse(stdout) as { source: string }).source).toBe('llm');
  });

  it('should fail in one line with the reason for a bad model under --llm local, and fall back with a note under auto', async () => {
    const local = await vqaLlm(['ask', fixtureImage('truck.jpg'), 'What is this?', ...tiny, '--llm', 'local', '--llm-model', ggufPath('no-template.gguf')], cleanEnv());
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/^error: .*no chat template/m);
    expect(local.stderr).not.toMatch(/\n\s+at /);
    const auto = await vqaLlm(['ask', fixtureImage('truck.jpg'), 'What is this?', ...tiny, '--json'], cleanEnv({ VQA_LLM_LOCAL_MODEL: ggufPath('truncated.gguf') }));
    expect(auto.code).toBe(0);
    expect(auto.stderr).toContain('note: the local model could not be used (model_corrupt)');
    expect((JSON.parse(auto.stdout) as { source: string }).source).toBe('vqa');
  });

  it('should serve answers from the local model with serve --llm local', async () => {
    const child = spawn(process.execPath, [cli, 'serve', '--port', '0', ...tiny, '--llm', 'local', '--llm-model', ggufPath('tiny.gguf'), '--log-level', 'silent', '--no-web'], { cwd: root, env: cleanEnv() });
    let stderr = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
          const match = /listening on (http:\/\/\S+)/.exec(stderr);
          if (match) resolve(match[1]!);
        });
        child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
      });
      expect(stderr).toMatch(/llm\s+local, vqa-llm tiny \(llama\)/);
      const image = `data:image/jpeg;base64,${(await readFile(fixtureImage('truck.jpg'))).toString('base64')}`;
      // Readiness waits for the vision models; the local model loaded before listening.
      let response: Response | undefined;
      for (let attempt = 0; attempt < 120; attempt += 1) {
        response = await fetch(`${url}/v1/vqa`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image, question: 'What is this?' }) });
        if (response.status !== 503) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(response?.status).toBe(200);
      const body = (await response!.json()) as Record<string, unknown>;
      expect(JSON.stringify(body)).toContain('"llm"');
      expect(body.source ?? (body as { result?: { source?: string } }).result?.source).toBe('llm');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.on('exit', resolve));
    }
  });
});
