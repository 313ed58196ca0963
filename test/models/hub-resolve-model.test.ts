// resolveModel's published-folder download and the hub settings it shares with the upstream client: HF_ENDPOINT
// (VQA_LLM_HUB_URL as its alias) and HF_TOKEN sent to the hub's origin only.
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../dist/src/errors/invalid-option-error.js';
import { resolveModel } from '../../dist/src/models/resolve-model.js';
import { HubStandIn } from '../helpers/hub-stand-in.js';
import { rejection, temporaryCache } from './hub-fixtures.js';

const files: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ id2label: { 0: 'cat' } })),
  'onnx/image_encoder.onnx': randomBytes(1 << 20),
  'onnx/fusion.onnx': randomBytes(1000),
};
const manifest = {
  format: 'vqa-llm-model',
  formatVersion: 1,
  kind: 'vle-vqa',
  name: 'published-vle',
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
  files: Object.fromEntries(Object.entries(files).map(([file, bytes]) => [file, { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length }])),
};
const REPO = 'test-org/published-vle';
const TOKEN = 'hf_published_token';
const ENV_KEYS = ['HF_ENDPOINT', 'VQA_LLM_HUB_URL', 'HF_TOKEN', 'VQA_LLM_OFFLINE'] as const;

describe('resolveModel (hub settings)', () => {
  const hub = new HubStandIn();
  let cacheDir: string;
  const saved: Partial<Record<(typeof ENV_KEYS)[number], string>> = {};

  beforeAll(async () => {
    await hub.start();
    await hub.serve(REPO, undefined, { token: TOKEN }, { ...files, 'vqa-llm.json': JSON.stringify(manifest) });
  });
  afterAll(async () => {
    await hub.stop();
  });
  beforeEach(async () => {
    for (const key of ENV_KEYS) {
      saved[key] = process.env[key];
      delete process.env[key];
    }
    cacheDir = await temporaryCache();
    hub.clearRequests();
  });
  afterEach(async () => {
    await rm(cacheDir, { recursive: true, force: true });
    for (const key of ENV_KEYS) {
      if (saved[key] === undefined) delete process.env[key];
      else process.env[key] = saved[key];
    }
  });

  it('should download from HF_ENDPOINT with HF_TOKEN sent to the hub and never to the CDN', async () => {
    process.env.HF_ENDPOINT = hub.endpoint;
    process.env.HF_TOKEN = TOKEN;
    const folder = await resolveModel(REPO, { cacheDir });

    expect((await readFile(path.join(folder, 'onnx', 'image_encoder.onnx'))).equals(files['onnx/image_encoder.onnx']!)).toBe(true);
    const toHub = hub.requests.filter((entry) => entry.origin === 'hub');
    const toCdn = hub.requests.filter((entry) => entry.origin === 'cdn');
    expect(toCdn.map((entry) => entry.file).sort()).toEqual(['onnx/fusion.onnx', 'onnx/image_encoder.onnx']);
    expect(toHub.every((entry) => entry.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(toCdn.filter((entry) => entry.authorization !== undefined)).toEqual([]);
  });

  it('should read VQA_LLM_HUB_URL when HF_ENDPOINT is not set, and prefer HF_ENDPOINT when both are', async () => {
    process.env.VQA_LLM_HUB_URL = hub.endpoint;
    process.env.HF_TOKEN = TOKEN;
    await resolveModel(REPO, { cacheDir });
    expect(hub.requests.length).toBeGreaterThan(0);

    process.env.HF_ENDPOINT = 'http://127.0.0.1:1';
    const error = await rejection(resolveModel(REPO, { cacheDir: path.join(cacheDir, 'another') }));
    expect(error.message).toContain('127.0.0.1:1');
  });

  it('should answer 401 without the token, naming HF_TOKEN', async () => {
    const error = await rejection(resolveModel(REPO, { cacheDir, hubUrl: hub.endpoint }));
    expect(error.message).toMatch(/401/);
    expect(error.message).toContain('HF_TOKEN');
  });

  it('should reject a hub address that is not an http(s) URL', async () => {
    process.env.HF_ENDPOINT = 'not a url';
    const error = await rejection(resolveModel(REPO, { cacheDir }));
    expect(InvalidOptionError.isInstance(error)).toBe(true);
    expect(error.message).toContain('HF_ENDPOINT');
  });
});
