import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { ModelDownloadError } from '../../dist/src/errors/model-download-error.js';
import { ModelIntegrityError } from '../../dist/src/errors/model-integrity-error.js';
import { ModelNotFoundError } from '../../dist/src/errors/model-not-found-error.js';
import { resolveModel } from '../../dist/src/models/resolve-model.js';
import type { ProgressEvent } from '../../dist/src/types.js';

/** The published folder, in memory: the large graph makes the download span many chunks. */
const files: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ id2label: { 0: 'cat' } })),
  'preprocessor_config.json': Buffer.from(JSON.stringify({ do_resize: true })),
  'tokenizer_config.json': Buffer.from(JSON.stringify({ tokenizer_class: 'BertTokenizer' })),
  'onnx/image_encoder.onnx': randomBytes(3 << 20),
  'onnx/fusion.onnx': randomBytes(1000),
};

const manifest = {
  format: 'vqa-llm-model',
  formatVersion: 1,
  kind: 'vle-vqa',
  name: 'tiny-remote',
  source: { checkpoint: 'test/dummy', revision: 'random-init' },
  graphs: {
    imageEncoder: {
      file: 'onnx/image_encoder.onnx',
      inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 8, 8] }],
      outputs: [{ name: 'image_embeds', dtype: 'float32', shape: ['batch', 5, 4] }],
    },
    fusion: {
      file: 'onnx/fusion.onnx',
      inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'] }],
      outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 1] }],
    },
  },
  files: Object.fromEntries(
    Object.entries(files).map(([file, bytes]) => [file, { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length }]),
  ),
};
const manifestText = JSON.stringify(manifest, null, 2);

type Handler = (request: IncomingMessage, response: ServerResponse, file: string) => boolean;

/** A hub on 127.0.0.1 serving the folder at /<owner>/<name>/resolve/main/… and at /published/…. */
class TestHub {
  requests: string[] = [];
  /** Lets a test replace the answer for some files; returns true when it answered. */
  override: Handler | undefined;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((request, response) => this.handle(request, response));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    this.requests.push(request.url ?? '');
    const match = /^\/(?:test-owner\/tiny-remote\/resolve\/main|published)\/(.+)$/.exec(request.url ?? '');
    const file = match ? decodeURIComponent(match[1]!) : '';
    if (this.override?.(request, response, file)) return;
    const body = file === 'vqa-llm.json' ? Buffer.from(manifestText) : files[file];
    if (!body) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    response.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    // Several writes so that the client sees the body arrive in pieces.
    for (let offset = 0; offset < body.length; offset += 256 << 10) response.write(body.subarray(offset, offset + (256 << 10)));
    response.end();
  }
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

/** Every file under a folder, relative; empty when the folder does not exist. */
async function listFiles(folder: string): Promise<string[]> {
  if (!existsSync(folder)) return [];
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => path.relative(folder, path.join(entry.parentPath, entry.name)));
}

describe('resolveModel (downloads)', () => {
  const hub = new TestHub();
  let cacheDir: string;
  const options = () => ({ cacheDir, hubUrl: hub.url, offline: false });

  beforeAll(async () => {
    await hub.start();
  });
  afterAll(async () => {
    await hub.stop();
  });
  beforeEach(async () => {
    cacheDir = await mkdtemp(path.join(tmpdir(), 'vqa-llm-cache-'));
    hub.requests = [];
    hub.override = undefined;
  });
  afterEach(async () => {
    await rm(cacheDir, { recursive: true, force: true });
  });

  it('should download every file into the cache with progress that never goes backwards and ends at 100', async () => {
    const events: ProgressEvent[] = [];
    const folder = await resolveModel('test-owner/tiny-remote', { ...options(), onProgress: (event) => events.push(event) });

    expect(folder.startsWith(cacheDir)).toBe(true);
    expect(folder).toContain(path.join('test-owner', 'tiny-remote', 'main'));
    for (const [file, bytes] of Object.entries(files)) {
      expect((await readFile(path.join(folder, ...file.split('/')))).equals(bytes)).toBe(true);
    }
    expect(await readFile(path.join(folder, 'vqa-llm.json'), 'utf8')).toBe(manifestText);
    expect(hub.requests[0]).toBe('/test-owner/tiny-remote/resolve/main/vqa-llm.json');

    const percents = events.flatMap((event) => (event.status === 'progress' ? [event.progress!] : []));
    expect(percents.length).toBeGreaterThan(Object.keys(files).length);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBe(100);
    for (const file of Object.keys(files)) {
      expect(events).toContainEqual({ status: 'start', task: 'download:test-owner/tiny-remote', file, total: files[file]!.length });
      expect(events).toContainEqual({ status: 'done', task: 'download:test-owner/tiny-remote', file });
    }
    expect(events.at(-1)).toEqual({ status: 'ready', task: 'download:test-owner/tiny-remote' });
    // No temporary files left behind.
    expect((await listFiles(cacheDir)).filter((file) => file.includes('.staging') || file.endsWith('.part'))).toEqual([]);
  });

  it('should use the cache on the second call without any request', async () => {
    const first = await resolveModel('test-owner/tiny-remote', options());
    const requestsAfterFirst = hub.requests.length;
    const second = await resolveModel('test-owner/tiny-remote', { ...options(), offline: true });
    expect(second).toBe(first);
    expect(hub.requests.length).toBe(requestsAfterFirst);
  });

  it('should download from the base URL of a published folder', async () => {
    const folder = await resolveModel(`${hub.url}/published/`, options());
    expect((await readFile(path.join(folder, 'onnx', 'fusion.onnx'))).equals(files['onnx/fusion.onnx']!)).toBe(true);
    expect(hub.requests).toContain('/published/onnx/image_encoder.onnx');
  });

  it('should refuse a corrupted file and leave nothing in the cache', async () => {
    hub.override = (_request, response, file) => {
      if (file !== 'onnx/fusion.onnx') return false;
      const corrupted = Buffer.from(files[file]!);
      corrupted[10] = corrupted[10]! ^ 0xff;
      response.writeHead(200, { 'content-length': corrupted.length }).end(corrupted);
      return true;
    };
    const error = await rejection(resolveModel('test-owner/tiny-remote', options()));
    expect(ModelDownloadError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('checksum_mismatch');
    expect(error.message).toContain('onnx/fusion.onnx');
    expect(await listFiles(cacheDir)).toEqual([]);
  });

  it('should refuse a file longer than its manifest says', async () => {
    hub.override = (_request, response, file) => {
      if (file !== 'config.json') return false;
      response.writeHead(200).end(Buffer.concat([files[file]!, Buffer.from('trailing garbage')]));
      return true;
    };
    const error = await rejection(resolveModel('test-owner/tiny-remote', options()));
    expect(error.reason).toBe('checksum_mismatch');
    expect(await listFiles(cacheDir)).toEqual([]);
  });

  it('should report a repository that is neither a published folder nor an upstream checkpoint', async () => {
    // No vqa-llm.json (404): resolution then looks for an upstream checkpoint, which the hub does not know either.
    const error = await rejection(resolveModel('test-owner/missing-model', options()));
    expect(ModelNotFoundError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('missing_repo');
    expect(error.message).toContain('test-owner/missing-model');
    expect(await listFiles(cacheDir)).toEqual([]);
  });

  it('should report a 404 from a published-folder URL with the URL', async () => {
    const error = await rejection(resolveModel(`${hub.url}/test-owner/missing-model/resolve/main/`, options()));
    expect(ModelDownloadError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('http_error');
    expect(error.message).toContain(`${hub.url}/test-owner/missing-model/resolve/main/vqa-llm.json`);
    expect(error.message).toContain('404');
    expect(await listFiles(cacheDir)).toEqual([]);
  });

  it('should report a missing listed file as an HTTP error', async () => {
    hub.override = (_request, response, file) => {
      if (file !== 'onnx/fusion.onnx') return false;
      response.writeHead(404).end();
      return true;
    };
    const error = await rejection(resolveModel('test-owner/tiny-remote', options()));
    expect(error.reason).toBe('http_error');
    expect(error.message).toContain('onnx/fusion.onnx');
  });

  it('should stop when the signal aborts and keep nothing', async () => {
    const controller = new AbortController();
    hub.override = (_request, response, file) => {
      if (file !== 'onnx/image_encoder.onnx') return false;
      // Half the file, then silence: only the abort can end the download.
      response.writeHead(200, { 'content-length': files[file]!.length });
      response.write(files[file]!.subarray(0, 1 << 20));
      return true;
    };
    const promise = resolveModel('test-owner/tiny-remote', {
      ...options(),
      signal: controller.signal,
      onProgress: (event) => {
        if (event.status === 'progress' && event.file === 'onnx/image_encoder.onnx') controller.abort();
      },
    });
    const error = await rejection(promise);
    expect(error.name).toBe('AbortError');
    expect(await listFiles(cacheDir)).toEqual([]);
  });

  it('should refuse the network when offline', async () => {
    const error = await rejection(resolveModel('test-owner/tiny-remote', { ...options(), offline: true }));
    expect(ModelNotFoundError.isInstance(error)).toBe(true);
    expect(error.message).toContain('offline');
    expect(error.message).toContain('VQA_LLM_OFFLINE');
    expect(hub.requests).toEqual([]);
  });

  it('should honour VQA_LLM_OFFLINE when the option is not given', async () => {
    const previous = process.env.VQA_LLM_OFFLINE;
    process.env.VQA_LLM_OFFLINE = '1';
    try {
      const error = await rejection(resolveModel('test-owner/tiny-remote', { cacheDir, hubUrl: hub.url }));
      expect(error.reason).toBe('missing_folder');
      expect(hub.requests).toEqual([]);
    } finally {
      if (previous === undefined) delete process.env.VQA_LLM_OFFLINE;
      else process.env.VQA_LLM_OFFLINE = previous;
    }
  });

  it('should report an unreachable hub as a network error', async () => {
    const error = await rejection(resolveModel('test-owner/tiny-remote', { ...options(), hubUrl: 'http://127.0.0.1:1' }));
    expect(error.reason).toBe('network');
    expect(error.message).toContain('http://127.0.0.1:1');
  });

  it('should check the kind before downloading the graphs', async () => {
    const error = await rejection(resolveModel('test-owner/tiny-remote', { ...options(), kind: 'blip-captioner' }));
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('wrong_kind');
    expect(hub.requests).toEqual(['/test-owner/tiny-remote/resolve/main/vqa-llm.json']);
  });

  it('should download again when a cached file was deleted', async () => {
    const folder = await resolveModel('test-owner/tiny-remote', options());
    await rm(path.join(folder, 'config.json'));
    hub.requests = [];
    await expect(resolveModel('test-owner/tiny-remote', options())).resolves.toBe(folder);
    expect(hub.requests.length).toBeGreaterThan(0);
    expect(existsSync(path.join(folder, 'config.json'))).toBe(true);
  });
});
