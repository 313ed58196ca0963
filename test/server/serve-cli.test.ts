import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAiServer, type FakeOpenAiServer } from '../helpers/fake-openai-server.js';
import { modelsDir, root } from '../helpers/fixtures.js';
import { dataUrl, llmReply } from './server-helpers.js';

const apiKey = 'sk-test-0123456789abcdefSECRET';

describe('vqa-llm serve, as a user runs it', () => {
  let llm: FakeOpenAiServer;
  let child: ChildProcess;
  let stderr = '';
  let stdout = '';
  let url: string;

  beforeAll(async () => {
    llm = await startFakeOpenAiServer([{ kind: 'content', content: llmReply('fishing pole', 'He is holding a fishing pole.'), chunks: 4 }]);
    child = spawn(process.execPath, [join(root, 'bin', 'vqa-llm.js'), 'serve', '--port', '0', '--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', '--llm-model', 'fake-llm'], {
      cwd: root,
      env: { ...process.env, VQA_LLM_OFFLINE: '1', OPENAI_BASE_URL: llm.baseUrl, OPENAI_API_KEY: apiKey, VQA_LLM_MAX_CONCURRENCY: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (stdout += String(chunk)));
    url = await new Promise<string>((resolve, reject) => {
      child.stderr!.on('data', (chunk) => {
        stderr += String(chunk);
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
  });
  afterAll(async () => {
    if (child?.exitCode === null) child.kill('SIGKILL');
    await llm?.close();
  });

  it('should print its configuration at start with the API key masked and each value sourced', () => {
    expect(stderr).toContain('vqa-llm serve configuration:');
    expect(stderr).toMatch(/max concurrency\s+2\s+\(env VQA_LLM_MAX_CONCURRENCY\)/);
    expect(stderr).toMatch(/llm base url\s+http:\/\/127\.0\.0\.1:\d+\/v1\s+\(env OPENAI_BASE_URL\)/);
    expect(stderr).toMatch(/OPENAI_API_KEY\s+sk-…CRET \(30 chars\)/);
    expect(stderr).toMatch(/port\s+0\s+\(--port\)/);
    expect(stderr + stdout).not.toContain(apiKey);
  });

  it('should answer the openai SDK, plain and streaming', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: 'user', content: [{ type: 'image_url', image_url: { url: dataUrl('fishing.jpg') } }, { type: 'text', text: "What is in the man's hand?" }] },
    ];
    const completion = await client.chat.completions.create({ model: 'vqa-llm', messages });
    expect(completion.choices[0]!.message.content).toBe('He is holding a fishing pole.');
    let streamed = '';
    for await (const chunk of await client.chat.completions.create({ model: 'vqa-llm', messages, stream: true })) streamed += chunk.choices[0]?.delta.content ?? '';
    expect(streamed).toBe('He is holding a fishing pole.');
    expect(stdout + stderr).not.toContain(apiKey);
  });

  it('should log JSON lines on stdout and exit 0 on SIGTERM', async () => {
    const line = stdout.split('\n').find((text) => text.includes('"msg":"answered"'));
    expect(JSON.parse(line!)).toMatchObject({ source: 'llm', level: 30 });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
