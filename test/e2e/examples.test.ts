// Every example runs with the one command its header documents (on the tiny models), as a user would run it.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeOpenAiServer, type FakeOpenAiServer } from '../helpers/fake-openai-server.js';
import { root } from '../helpers/fixtures.js';

const run = promisify(execFile);

async function example(name: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...rest } = process.env;
  const { stdout } = await run(process.execPath, [join(root, 'dist', 'examples', `${name}.js`), ...args], { cwd: root, env: { ...rest, VQA_LLM_OFFLINE: '1', ...env }, timeout: 60_000 });
  return stdout;
}

/** Runs an example with `input` on its stdin, then closed, as `printf ... | node ...` does. */
function exampleWithInput(name: string, args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { OPENAI_API_KEY: _key, OPENAI_BASE_URL: _url, ...rest } = process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'dist', 'examples', `${name}.js`), ...args], { cwd: root, env: { ...rest, VQA_LLM_OFFLINE: '1' }, timeout: 60_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

describe('the examples', () => {
  let scratch: string;
  let llm: FakeOpenAiServer;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'vqa-llm-examples-'));
    llm = await startFakeOpenAiServer([{ kind: 'content', content: JSON.stringify({ shortAnswer: 'fishing pole', answer: 'He holds a fishing pole.' }) }]);
  });
  afterAll(async () => {
    await llm?.close();
    await rm(scratch, { recursive: true, force: true });
  });

  it('should caption an image and list candidates', async () => {
    expect(await example('caption', ['--tiny', 'test/fixtures/images/fishing.jpg'])).toMatch(/greedy: +\S+/);
    expect(await example('candidates', ['--tiny', 'test/fixtures/images/fishing.jpg', "What is in the man's hand?"])).toContain('(image cached');
  });

  it('should run the full chain against an OpenAI-compatible LLM from the environment', async () => {
    const stdout = await example('ask', ['--tiny', 'test/fixtures/images/fishing.jpg', "What is in the man's hand?"], { OPENAI_BASE_URL: llm.baseUrl, VQA_LLM_MODEL: 'fake' });
    expect(stdout).toContain('answer:     He holds a fishing pole.');
  });

  it('should write one JSON line per image in a batch', async () => {
    const output = join(scratch, 'batch.jsonl');
    await example('batch', ['--tiny', '--llm', 'none', 'test/fixtures/images', 'What is in the picture?', output]);
    const lines = (await readFile(output, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { image: string; answer?: string });
    expect(lines.map((line) => line.image).sort()).toEqual(['fishing.jpg', 'synthetic.png', 'truck.jpg']);
    expect(lines.every((line) => typeof line.answer === 'string')).toBe(true);
  });

  it('should hold a conversation about one image, reusing its cached work', async () => {
    const stdout = await example('chatbot', ['--tiny', '--llm', 'none', 'test/fixtures/images/truck.jpg', 'How many people are there?', 'What color is the truck?']);
    expect(stdout).toContain('image work cached');
    expect(stdout).toContain('(2 turns in the history)');
  });

  it('should answer questions piped to the chatbot, and end at the end of its input', async () => {
    const piped = await exampleWithInput('chatbot', ['--tiny', '--llm', 'none', 'test/fixtures/images/truck.jpg'], 'How many people are there?\nWhat color is the truck?\n');
    expect(piped.code).toBe(0);
    const answers = piped.stdout.split('\n').filter((line) => line.startsWith('bot: '));
    expect(answers).toHaveLength(2);
    // Without an LLM the sentence streams as one delta, printed once: "bot: 3.   [vqa, ...]".
    for (const answer of answers) expect(answer).toMatch(/^bot: [^.]+\. {3}\[vqa, /);
    expect(piped.stdout).toContain('(2 turns in the history)');

    const closed = await exampleWithInput('chatbot', ['--tiny', '--llm', 'none', 'test/fixtures/images/truck.jpg'], '');
    expect(closed).toMatchObject({ code: 0, stderr: '' });
    expect(closed.stdout).toContain('(0 turns in the history)');
  });

  it('should run the agent with the tool beside a calculator', async () => {
    const stdout = await example('agent-tool', ['--tiny', '--llm', 'none', 'test/fixtures/images/truck.jpg']);
    expect(stdout).toMatch(/→ visual_question_answering/);
    expect(stdout).toMatch(/→ multiply/);
    expect(stdout).toMatch(/Three times the number of people in the picture is \d+\./);
  });

  it('should call the server with the openai SDK, plain and streaming', async () => {
    const stdout = await example('openai-client', ['--tiny', '--llm', 'none', 'test/fixtures/images/fishing.jpg']);
    const answer = /answer: +(.+)/.exec(stdout)![1];
    expect(stdout).toContain(`streamed:   ${answer}`);
  });
});
