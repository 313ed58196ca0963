// Starts the real server on the tiny test models, on 127.0.0.1 port 0, with the loopback fake LLM when asked.
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { ChatOpenAI } from '@langchain/openai';
import { createChatModel } from '../../dist/src/llm/index.js';
import { createVisionModels } from '../../dist/src/runtime/vision-models.js';
import { startVqaServer, type RunningVqaServer, type VqaServerOptions } from '../../dist/src/server/vqa-server.js';
import { startFakeOpenAiServer, type FakeOpenAiServer, type FakeOpenAiServerOptions } from '../helpers/fake-openai-server.js';
import { fixtureImage, modelsDir } from '../helpers/fixtures.js';

export interface TestServer {
  url: string;
  baseUrl: string;
  server: RunningVqaServer;
  fakeLlm?: FakeOpenAiServer;
  /** Every log line the server wrote, as text. */
  logs: string[];
  close(): Promise<void>;
}

export function dataUrl(name: string, type = 'image/jpeg'): string {
  return `data:${type};base64,${readFileSync(fixtureImage(name)).toString('base64')}`;
}

export function llmReply(shortAnswer: string, answer: string): string {
  return JSON.stringify({ shortAnswer, answer });
}

export interface TestServerOptions extends Partial<Omit<VqaServerOptions, 'vision' | 'llm'>> {
  /** Put the loopback fake LLM behind the server. */
  fakeLlm?: boolean;
  /** When the fake LLM reports token usage in streams (default `when-asked`). */
  fakeLlmUsage?: FakeOpenAiServerOptions['usage'];
  /**
   * Ask the LLM for usage in streams (ChatOpenAI's `streamUsage`, which sends `stream_options.include_usage`);
   * `createChatModel()`, used otherwise, leaves it off.
   */
  llmStreamUsage?: boolean;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const { fakeLlm: wantsFake, fakeLlmUsage, llmStreamUsage, ...serverOptions } = options;
  const fakeLlm = wantsFake ? await startFakeOpenAiServer([], { usage: fakeLlmUsage }) : undefined;
  const vision = await createVisionModels({ modelsDir, captionModel: 'tiny-blip', vqaModel: 'tiny-vle', offline: true });
  const llm = !fakeLlm
    ? 'none'
    : llmStreamUsage
      ? new ChatOpenAI({ model: 'fake-llm', apiKey: 'unused', temperature: 0, timeout: 10_000, maxRetries: 0, streamUsage: true, configuration: { baseURL: fakeLlm.baseUrl } })
      : createChatModel({ provider: 'openai', baseUrl: fakeLlm.baseUrl, model: 'fake-llm', env: {}, timeoutMs: 10_000, maxRetries: 0 });
  const logs: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(String(chunk));
      callback();
    },
  });
  const server = await startVqaServer({
    vision,
    llm,
    chainOptions: { llmRetries: 0 },
    disposeVision: true,
    logger: { level: 'info', stream },
    ...serverOptions,
    host: '127.0.0.1',
    port: 0,
  });
  return {
    url: server.url,
    baseUrl: `${server.url}/v1`,
    server,
    fakeLlm,
    logs,
    async close() {
      await server.close();
      await fakeLlm?.close();
    },
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Left as text: the assertion will show it.
  }
  return { status: response.status, body: parsed, headers: response.headers };
}
