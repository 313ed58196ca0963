// A real HTTP server on 127.0.0.1 that speaks enough of OpenAI's chat-completions API (JSON and SSE streaming)
// to test the openai provider end to end, with scripted replies. It reports token usage as OpenAI and vLLM do: always
// in a JSON reply, in a stream only when asked with `stream_options.include_usage` (a last chunk without choices).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Token counts to report; by default about one token per 4 characters of the prompt's messages and of the reply. */
export interface ScriptedUsage {
  prompt_tokens: number;
  completion_tokens: number;
}

/** What the server does for one request, in order; the last entry repeats once the script runs out. */
export type ScriptedReply =
  /** A completion whose message content is `content` (streamed in `chunks` pieces when the client asks for SSE). */
  | { kind: 'content'; content: string; chunks?: number; usage?: ScriptedUsage }
  /** An HTTP error status with an OpenAI-style error body. */
  | { kind: 'status'; status: number; headers?: Record<string, string>; message?: string }
  /** A 200 whose body is not JSON at all. */
  | { kind: 'garbage'; body: string }
  /** Accept the request and never answer (until the client gives up or the server closes). */
  | { kind: 'hang' }
  /** Start an SSE stream, send `content` in `chunks` pieces, then destroy the socket without `[DONE]`. */
  | { kind: 'cut'; content: string; chunks?: number }
  /** Stream `content` one character every `intervalMs` (a slow drip that outlasts a deadline). */
  | { kind: 'drip'; content: string; intervalMs: number };

export interface RecordedRequest {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

export interface FakeOpenAiServerOptions {
  /**
   * When a stream reports usage: `when-asked` (OpenAI, vLLM: only with `stream_options.include_usage`), `always`
   * (servers that send it unasked), `never` (servers that have no counts; JSON replies then lack `usage` too).
   * Default `when-asked`.
   */
  usage?: 'when-asked' | 'always' | 'never';
}

export interface FakeOpenAiServer {
  /** Base URL to give the client, ending in `/v1`. */
  baseUrl: string;
  requests: RecordedRequest[];
  /** Replace the script; also resets which entry comes next. */
  script(replies: ScriptedReply[]): void;
  close(): Promise<void>;
}

function split(content: string, pieces: number): string[] {
  const size = Math.max(1, Math.ceil(content.length / pieces));
  const parts: string[] = [];
  for (let index = 0; index < content.length; index += size) parts.push(content.slice(index, index + size));
  return parts.length > 0 ? parts : [''];
}

function usageOf(body: Record<string, unknown>, content: string, scripted?: ScriptedUsage): Record<string, number> {
  const counts = scripted ?? { prompt_tokens: Math.ceil(JSON.stringify(body.messages ?? '').length / 4), completion_tokens: Math.ceil(content.length / 4) };
  return { ...counts, total_tokens: counts.prompt_tokens + counts.completion_tokens };
}

function completion(model: string, content: string, usage: Record<string, number> | undefined): Record<string, unknown> {
  return {
    id: 'chatcmpl-test',
    object: 'chat.completion',
    created: 1_700_000_000,
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop', logprobs: null }],
    ...(usage ? { usage } : {}),
  };
}

function usageChunk(model: string, usage: Record<string, number>): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [], usage })}\n\n`;
}

function sseChunk(model: string, delta: Record<string, unknown>, finishReason: string | null): string {
  const chunk = { id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1_700_000_000, model, choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }] };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/**
 * Starts the server on an ephemeral loopback port.
 *
 * @example
 * ```ts
 * const server = await startFakeOpenAiServer([{ kind: 'status', status: 500 }]);
 * const llm = createChatModel({ provider: 'openai', baseUrl: server.baseUrl });
 * await server.close();
 * ```
 */
export async function startFakeOpenAiServer(initial: ScriptedReply[] = [], options: FakeOpenAiServerOptions = {}): Promise<FakeOpenAiServer> {
  const reportUsage = options.usage ?? 'when-asked';
  let replies = initial;
  let next = 0;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    requests.push({ path: request.url ?? '', headers: request.headers, body });
    if (request.url !== '/v1/chat/completions') {
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    const model = typeof body.model === 'string' ? body.model : 'test-model';
    const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
    const streamsUsage = reportUsage === 'always' || (reportUsage === 'when-asked' && streamOptions?.include_usage === true);
    const scripted = replies[Math.min(next, replies.length - 1)] ?? { kind: 'status', status: 500, message: 'no script' };
    next += 1;
    switch (scripted.kind) {
      case 'status':
        response
          .writeHead(scripted.status, { 'content-type': 'application/json', ...scripted.headers })
          .end(JSON.stringify({ error: { message: scripted.message ?? `scripted ${scripted.status}`, type: 'server_error', code: null } }));
        return;
      case 'garbage':
        response.writeHead(200, { 'content-type': 'application/json' }).end(scripted.body);
        return;
      case 'hang':
        return;
      case 'drip': {
        response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        response.write(sseChunk(model, { role: 'assistant', content: '' }, null));
        for (const character of scripted.content) {
          if (response.destroyed || response.socket?.destroyed) return;
          response.write(sseChunk(model, { content: character }, null));
          await new Promise((resolve) => setTimeout(resolve, scripted.intervalMs));
        }
        response.write(sseChunk(model, {}, 'stop'));
        response.end('data: [DONE]\n\n');
        return;
      }
      case 'content':
      case 'cut': {
        if (body.stream !== true) {
          if (scripted.kind === 'cut') {
            response.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' }).write('{"id": "chatcmpl-');
            response.socket?.destroy();
            return;
          }
          const usage = reportUsage === 'never' ? undefined : usageOf(body, scripted.content, scripted.usage);
          response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion(model, scripted.content, usage)));
          return;
        }
        response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        response.write(sseChunk(model, { role: 'assistant', content: '' }, null));
        for (const piece of split(scripted.content, scripted.chunks ?? 4)) {
          response.write(sseChunk(model, { content: piece }, null));
          // Let each piece reach the client as its own read, as a real token stream would.
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (scripted.kind === 'cut') {
          response.socket?.destroy();
          return;
        }
        response.write(sseChunk(model, {}, 'stop'));
        if (streamsUsage) response.write(usageChunk(model, usageOf(body, scripted.content, scripted.usage)));
        response.end('data: [DONE]\n\n');
        return;
      }
    }
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      response.writeHead(500).end(String(error));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    requests,
    script(newReplies) {
      replies = newReplies;
      next = 0;
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
}
