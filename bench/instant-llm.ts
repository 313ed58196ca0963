// A loopback OpenAI-compatible chat endpoint that answers every request at once (or after `setDelay`), as JSON or
// as server-sent events: the benchmarks' LLM, so that what they time is ours, not a model's.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface InstantLlm {
  /** `http://127.0.0.1:PORT/v1`, for `OPENAI_BASE_URL` or `createChatModel({ baseUrl })`. */
  baseUrl: string;
  server: Server;
  /** Holds every later reply back by `ms` (0: none). */
  setDelay(ms: number): void;
}

export async function startInstantLlm(reply: { shortAnswer: string; answer: string } = { shortAnswer: 'fishing pole', answer: 'The man is holding a fishing pole.' }): Promise<InstantLlm> {
  const content = JSON.stringify(reply);
  let delayMs = 0;
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', async () => {
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const base = { id: 'instant', created: 0, model: 'instant' };
      if ((JSON.parse(body || '{}') as { stream?: boolean }).stream !== true) {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }));
        return;
      }
      const chunk = (delta: object, finishReason: string | null): string =>
        `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
      response.writeHead(200, { 'content-type': 'text/event-stream' });
      response.write(chunk({ role: 'assistant', content }, null));
      response.write(chunk({}, 'stop'));
      response.end('data: [DONE]\n\n');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    server,
    setDelay(ms) {
      delayMs = ms;
    },
  };
}
