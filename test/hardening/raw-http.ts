// Requests that fetch cannot send: a Host header of our choosing, a body that never completes, a client that stops
// reading. Each resolves with what the server did, never with a timing.
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import sharp from 'sharp';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A request with any headers and a body sent whole. */
export function rawRequest(url: string, options: { method?: string; path?: string; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: target.hostname, port: target.port, method: options.method ?? 'GET', path: options.path ?? target.pathname, headers: options.headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

/**
 * A POST that announces `declaredBytes` and sends only the first few: resolves with the response the server gives
 * before the body is complete (it never will be), and leaves the socket open until `close()`.
 */
export function unfinishedPost(url: string, path: string, declaredBytes = 20_000_000, headers: Record<string, string> = {}): { response: Promise<RawResponse>; close(): void } {
  const target = new URL(url);
  const outgoing = request({ host: target.hostname, port: target.port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': String(declaredBytes), ...headers } });
  const response = new Promise<RawResponse>((resolve, reject) => {
    outgoing.on('response', (incoming) => {
      let body = '';
      incoming.setEncoding('utf8');
      incoming.on('data', (chunk: string) => (body += chunk));
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body }));
      incoming.on('error', reject);
    });
    outgoing.on('error', reject);
  });
  // Closing before an answer rejects the promise; a caller that gave up on it must not see an unhandled rejection.
  response.catch(() => undefined);
  outgoing.write('{"model":"vqa-llm","messages":[');
  return { response, close: () => outgoing.destroy() };
}

/** Opens a TCP connection and resolves once it closes, from either side; `socket` for writing. */
export function openSocket(url: string): { socket: Socket; closed: Promise<void> } {
  const target = new URL(url);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, closed };
}

/**
 * A classic little-endian TIFF of a 1x1 grey pixel whose directory chain holds `directories` directories, each a
 * valid page pointing at the same pixel: ~114 bytes a directory.
 */
export function manyDirectoryTiff(directories: number): Buffer {
  const entryCount = 9;
  const directorySize = 2 + entryCount * 12 + 4;
  const pixelOffset = 8;
  const firstDirectory = 10;
  const buffer = Buffer.alloc(firstDirectory + directories * directorySize);
  buffer.write('II', 0, 'latin1');
  buffer.writeUInt16LE(42, 2);
  buffer.writeUInt32LE(firstDirectory, 4);
  buffer[pixelOffset] = 128;
  for (let index = 0; index < directories; index += 1) {
    const at = firstDirectory + index * directorySize;
    buffer.writeUInt16LE(entryCount, at);
    const entries: [tag: number, type: number, value: number][] = [
      [256, 3, 1],
      [257, 3, 1],
      [258, 3, 8],
      [259, 3, 1],
      [262, 3, 1],
      [273, 4, pixelOffset],
      [277, 3, 1],
      [278, 3, 1],
      [279, 4, 1],
    ];
    entries.forEach(([tag, type, value], entry) => {
      const offset = at + 2 + entry * 12;
      buffer.writeUInt16LE(tag, offset);
      buffer.writeUInt16LE(type, offset + 2);
      buffer.writeUInt32LE(1, offset + 4);
      if (type === 3) buffer.writeUInt16LE(value, offset + 8);
      else buffer.writeUInt32LE(value, offset + 8);
    });
    buffer.writeUInt32LE(index + 1 < directories ? at + directorySize : 0, at + 2 + entryCount * 12);
  }
  return buffer;
}

/** sharp's count of a TIFF's pages, to check that {@link manyDirectoryTiff} is what it says. */
export async function tiffPages(bytes: Buffer): Promise<number | undefined> {
  return (await sharp(bytes, { pages: -1 }).metadata()).pages;
}

/** The first `scans` scans of a progressive JPEG, then its end marker: still a valid image, with fewer passes. */
export function firstScans(jpeg: Buffer, scans: number): Buffer {
  let seen = 0;
  let position = 2;
  while (position < jpeg.length) {
    const marker = jpeg.indexOf(0xff, position);
    const code = jpeg[marker + 1]!;
    if (code === 0x00 || (code >= 0xd0 && code <= 0xd7)) {
      position = marker + 2;
      continue;
    }
    if (code === 0xda) {
      if (seen === scans) return Buffer.concat([jpeg.subarray(0, marker), Buffer.from([0xff, 0xd9])]);
      seen += 1;
    }
    if (code === 0xd9) break;
    position = marker + 2 + jpeg.readUInt16BE(marker + 2);
  }
  return jpeg;
}
