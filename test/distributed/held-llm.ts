// A stand-in for an OpenAI-compatible LLM endpoint on loopback: it answers each question with a fixed short answer
// (deterministic, so two runs agree), and can hold the request for one question until released, so that a test can
// kill the worker waiting on it.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HeldLlm {
  baseUrl: string;
  /** Questions seen, in order (a held one included). */
  seen: string[];
  /** Holds requests whose prompt contains `text`; resolves `held` when the first arrives. */
  hold(text: string): { held: Promise<void> };
  release(): void;
  close(): Promise<void>;
}

function reply(body: Record<string, unknown>, content: string, response: ServerResponse): void {
  const model = typeof body.model === 'string' ? body.model : 'held-llm';
  if (body.stream !== true) {
    response.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ id: 'chatcmpl-held', object: 'chat.completion', created: 1_700_000_000, model, choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] }),
    );
    return;
  }
  const chunk = (delta: Record<string, unknown>, finish: string | null): string =>
    `data: ${JSON.stringify({ id: 'chatcmpl-held', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
  response.writeHead(200, { 'content-type': 'text/event-stream' });
  response.write(chunk({ role: 'assistant', content }, null));
  response.write(chunk({}, 'stop'));
  response.end('data: [DONE]\n\n');
}

/** `answers` maps a question's text to the short answer to give (else "yes"). */
export async function startHeldLlm(answers: Map<string, string>): Promise<HeldLlm> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  let holding: { text: string; arrived: () => void; released: Promise<void>; release: () => void } | undefined;

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    const prompt = JSON.stringify(body.messages ?? '');
    const question = [...answers.keys()].sort((left, right) => right.length - left.length).find((text) => prompt.includes(JSON.stringify(text).slice(1, -1))) ?? '';
    seen.push(question);
    if (holding && question !== '' && question.includes(holding.text)) {
      holding.arrived();
      await holding.released;
    }
    const shortAnswer = answers.get(question) ?? 'yes';
    reply(body, JSON.stringify({ shortAnswer, answer: `It is ${shortAnswer}.` }), response);
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => response.writeHead(500).end(String(error)));
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    seen,
    hold(text) {
      let arrived!: () => void;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (arrived = resolve));
      const released = new Promise<void>((resolve) => (release = resolve));
      holding = { text, arrived, released, release };
      return { held };
    },
    release() {
      holding?.release();
      holding = undefined;
    },
    close() {
      holding?.release();
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
