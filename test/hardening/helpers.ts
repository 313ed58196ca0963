// Shared pieces of the hardening tests: a loopback HTTP server with scripted routes, a vision double whose calls wait
// on a gate, chat-completion bodies, and small image makers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import sharp from 'sharp';
import type { CaptionResult, CandidatesResult, ImageInput, LoadedImage, VisionModels } from '../../src/types.js';

export interface LoopbackServer {
  origin: string;
  /** Requests received, by path. */
  hits: string[];
  close(): Promise<void>;
}

/** A plain HTTP server on 127.0.0.1 port 0; `handler` answers by path. */
export async function startLoopbackServer(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<LoopbackServer> {
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => {
    hits.push(request.url ?? '');
    handler(request, response);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    hits,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

export async function pngBytes(width = 64, height = 48): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let index = 0; index < pixels.length; index += 1) pixels[index] = (index * 13) % 251;
  return sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

export function chatBody(imageUrl: string, question = 'What is in the picture?', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'vqa-llm', messages: [{ role: 'user', content: [{ type: 'text', text: question }, { type: 'image_url', image_url: { url: imageUrl } }] }], ...extra };
}

export function toDataUrl(bytes: Uint8Array, type = 'image/png'): string {
  return `data:${type};base64,${Buffer.from(bytes).toString('base64')}`;
}

/**
 * A VisionModels double whose caption and candidates calls wait until `open()` (or their signal aborts), so that a
 * test can hold requests in flight and look at the queue without timing anything.
 */
export class GatedVision implements VisionModels {
  readonly models = { caption: 'gated-blip', vqa: 'gated-vle' };
  started = 0;
  aborted = 0;
  private waiters: (() => void)[] = [];
  private isOpen = false;

  constructor(options: { open?: boolean } = {}) {
    this.isOpen = options.open ?? false;
  }

  open(): void {
    this.isOpen = true;
    for (const wake of this.waiters.splice(0)) wake();
  }

  close(): void {
    this.isOpen = false;
  }

  async loadImage(input: ImageInput): Promise<LoadedImage> {
    if (typeof input === 'object' && 'kind' in input) return input;
    return { kind: 'loaded-image', data: new Uint8Array(3), width: 1, height: 1, format: 'png', hash: 'gated', byteLength: 3 };
  }

  async caption(_image: ImageInput, options?: { signal?: AbortSignal }): Promise<CaptionResult> {
    await this.gate(options?.signal);
    return { caption: 'a gated picture', tokenIds: [], cached: false, timings: {}, model: 'gated-blip' };
  }

  async candidates(_image: ImageInput, _question: string, options?: { topK?: number; signal?: AbortSignal }): Promise<CandidatesResult> {
    await this.gate(options?.signal);
    return { candidates: [{ answer: 'cat', score: 0.9 }], imageCached: false, timings: {}, model: 'gated-vle' };
  }

  async dispose(): Promise<void> {}

  private gate(signal?: AbortSignal): Promise<void> {
    this.started += 1;
    if (this.isOpen) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const wake = (): void => resolve();
      this.waiters.push(wake);
      signal?.addEventListener(
        'abort',
        () => {
          this.aborted += 1;
          this.waiters = this.waiters.filter((waiter) => waiter !== wake);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }
}

/** Polls `condition` every 10 ms until it holds (the test's own timeout bounds the wait). */
export async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
}
