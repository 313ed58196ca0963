import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../dist/src/errors/invalid-option-error.js';
import { ModelDownloadError } from '../../dist/src/errors/model-download-error.js';
import { ModelNotFoundError } from '../../dist/src/errors/model-not-found-error.js';
import { downloadHubSnapshot, selectCheckpointFiles } from '../../dist/src/models/hub/index.js';
import type { ProgressEvent } from '../../dist/src/types.js';
import { HubStandIn, type ServedRevision } from '../helpers/hub-stand-in.js';
import { blipLikeRepo, expectProgressContract, listFiles, rejection, sha256, shardedRepo, temporaryCache, vleLikeRepo } from './hub-fixtures.js';

const BLIP = 'test-org/blip-like';
const VLE = 'test-org/vle-like';
const SHARDED = 'test-org/sharded';
const PRIVATE = 'test-org/private-blip';
const TOKEN = 'hf_private_token_1234';
const BLIP_WANTED = ['config.json', 'model.safetensors', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt'];
const ENV_KEYS = ['HF_ENDPOINT', 'VQA_LLM_HUB_URL', 'HF_TOKEN', 'VQA_LLM_OFFLINE', 'VQA_LLM_CACHE'] as const;

describe('downloadHubSnapshot', () => {
  const hub = new HubStandIn();
  const blip = blipLikeRepo();
  const vle = vleLikeRepo();
  const sharded = shardedRepo();
  let blipMain: ServedRevision;
  let cacheDir: string;
  const savedEnv: Partial<Record<(typeof ENV_KEYS)[number], string>> = {};
  const base = () => ({ endpoint: hub.endpoint, cacheDir, retry: { minDelayMs: 1, maxDelayMs: 2000 } });

  beforeAll(async () => {
    await hub.start();
    blipMain = await hub.serve(BLIP, undefined, {}, blip);
    await hub.serve(VLE, undefined, {}, vle);
    await hub.serve(SHARDED, undefined, {}, sharded);
    await hub.serve(PRIVATE, undefined, { token: TOKEN }, blip);
  });
  afterAll(async () => {
    await hub.stop();
  });
  beforeEach(async () => {
    for (const key of ENV_KEYS) {
      savedEnv[key] = process.env[key];
      delete process.env[key];
    }
    cacheDir = await temporaryCache();
    hub.clearRequests();
    hub.clearFaults();
  });
  afterEach(async () => {
    await rm(cacheDir, { recursive: true, force: true });
    for (const key of ENV_KEYS) {
      if (savedEnv[key] === undefined) delete process.env[key];
      else process.env[key] = savedEnv[key];
    }
  });

  describe('selection and layout', () => {
    it('should fetch the configs, the tokenizer files and model.safetensors only, byte for byte, into snapshots/<commit>', async () => {
      const snapshot = await downloadHubSnapshot({ ...base(), repo: BLIP });

      expect(snapshot.commit).toBe(blipMain.commit);
      expect(snapshot.folder).toBe(path.join(cacheDir, 'hub-snapshots', new URL(hub.endpoint).host.replace(':', '_'), 'test-org', 'blip-like', 'snapshots', blipMain.commit));
      expect(snapshot.files.map((file) => file.path)).toEqual(BLIP_WANTED);
      expect(snapshot.files.find((file) => file.path === 'model.safetensors')).toEqual({ path: 'model.safetensors', size: blip['model.safetensors']!.length, sha256: sha256(blip['model.safetensors']!) });
      expect(await listFiles(snapshot.folder)).toEqual(BLIP_WANTED);
      for (const file of BLIP_WANTED) expect((await readFile(path.join(snapshot.folder, file))).equals(blip[file]!)).toBe(true);
      expect(hub.downloads(BLIP).sort()).toEqual(BLIP_WANTED);
      expect((await readFile(path.join(snapshot.folder, '..', '..', 'refs', 'main'), 'utf8')).trim()).toBe(blipMain.commit);
      // No partial and no lock left behind.
      expect(await listFiles(path.join(snapshot.folder, '..', '..', 'incomplete'))).toEqual([]);
      expect(await listFiles(path.join(snapshot.folder, '..', '..', 'locks'))).toEqual([]);
    });

    it('should list with ?blobs=true and take LFS files from the CDN origin through the 302', async () => {
      await downloadHubSnapshot({ ...base(), repo: BLIP });

      const listing = hub.requests.filter((entry) => entry.route === 'model-info');
      expect(listing.map((entry) => entry.url)).toEqual([`/api/models/${BLIP}/revision/main?blobs=true`]);
      const weights = hub.requests.filter((entry) => entry.file === 'model.safetensors');
      expect(weights.map((entry) => [entry.origin, entry.route, entry.status])).toEqual([
        ['hub', 'resolve', 302],
        ['cdn', 'cdn', 200],
      ]);
      expect(weights[0]!.url).toBe(`/${BLIP}/resolve/${blipMain.commit}/model.safetensors`);
    });

    it('should take pytorch_model.bin and spm.model from a repo without safetensors or tokenizer.json', async () => {
      const snapshot = await downloadHubSnapshot({ ...base(), repo: VLE });

      expect(snapshot.files.map((file) => file.path)).toEqual(['config.json', 'preprocessor_config.json', 'pytorch_model.bin', 'spm.model']);
      expect((await readFile(path.join(snapshot.folder, 'pytorch_model.bin'))).equals(vle['pytorch_model.bin']!)).toBe(true);
    });

    it('should take a sharded safetensors index with exactly the shards it names, and no .bin shard', async () => {
      const events: ProgressEvent[] = [];
      const snapshot = await downloadHubSnapshot({ ...base(), repo: SHARDED, onProgress: (event) => events.push(event) });

      expect(snapshot.files.map((file) => file.path)).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
      expect(hub.downloads(SHARDED)[0]).toBe('model.safetensors.index.json');
      // The total announced covers the shards, learnt from the index before they are fetched.
      expectProgressContract(events, sharded['config.json']!.length + (2 << 20) + (1 << 20));
    });

    it('should use a select option instead of the default selection', async () => {
      const snapshot = await downloadHubSnapshot({ ...base(), repo: BLIP, select: (files) => files.filter((file) => file.path === 'config.json' || file.path === 'README.md') });

      expect(snapshot.files.map((file) => file.path)).toEqual(['README.md', 'config.json']);
      expect(hub.downloads(BLIP).sort()).toEqual(['README.md', 'config.json']);
    });

    it('should say which weights a repo lacks when it has neither safetensors nor a .bin', async () => {
      await hub.serve('test-org/tf-only', undefined, {}, { 'config.json': '{}', 'tf_model.h5': Buffer.alloc(2 << 20) });
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: 'test-org/tf-only' }));

      expect(ModelNotFoundError.isInstance(error) && error.reason).toBe('missing_file');
      expect(error.message).toMatch(/neither model\.safetensors nor pytorch_model\.bin.*tf_model\.h5/);
      expect(hub.downloads('test-org/tf-only')).toEqual([]);
    });

    it('should export the default selection for callers that extend it', () => {
      const files = Object.entries(blip).map(([file, bytes]) => ({ path: file, size: bytes.length, lfs: file.endsWith('.safetensors') }));
      expect(selectCheckpointFiles(files).map((file) => file.path)).toEqual(BLIP_WANTED);
    });
  });

  describe('progress', () => {
    it('should announce the total before the first byte, never go backwards, and end at 100 then ready', async () => {
      const events: ProgressEvent[] = [];
      const hubBytesAtAnnouncement: number[] = [];
      await downloadHubSnapshot({
        ...base(),
        repo: BLIP,
        onProgress: (event) => {
          events.push(event);
          if (event.status === 'start' && event.file === undefined) hubBytesAtAnnouncement.push(hub.requests.reduce((sum, entry) => sum + entry.bytes, 0));
        },
      });

      const total = BLIP_WANTED.reduce((sum, file) => sum + blip[file]!.length, 0);
      expectProgressContract(events, total);
      expect(hubBytesAtAnnouncement).toEqual([0]);
      expect(events.filter((event) => event.status === 'done').map((event) => (event as { file?: string }).file).sort()).toEqual(BLIP_WANTED);
    });
  });

  describe('cache', () => {
    it('should find a finished snapshot again with one API request online and none offline', async () => {
      const first = await downloadHubSnapshot({ ...base(), repo: BLIP });
      hub.clearRequests();

      const events: ProgressEvent[] = [];
      const again = await downloadHubSnapshot({ ...base(), repo: BLIP, onProgress: (event) => events.push(event) });
      expect(again).toEqual(first);
      expect(hub.requests.map((entry) => entry.route)).toEqual(['model-info']);
      expect(events).toEqual([{ status: 'ready', task: `download:${BLIP}` }]);

      hub.clearRequests();
      const offline = await downloadHubSnapshot({ ...base(), repo: BLIP, offline: true });
      expect(offline).toEqual(first);
      process.env.VQA_LLM_OFFLINE = '1';
      expect(await downloadHubSnapshot({ ...base(), repo: BLIP })).toEqual(first);
      expect(hub.requests).toEqual([]);
    });

    it('should refuse offline with nothing cached, naming VQA_LLM_OFFLINE and --offline, without a request', async () => {
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, offline: true }));

      expect(ModelNotFoundError.isInstance(error) && error.reason).toBe('missing_folder');
      expect(error.message).toMatch(/VQA_LLM_OFFLINE/);
      expect(error.message).toMatch(/--offline/);
      expect(hub.requests).toEqual([]);
    });

    it('should refuse offline when the cache holds another selection than the one asked for', async () => {
      await downloadHubSnapshot({ ...base(), repo: BLIP, select: (files) => files.filter((file) => file.path === 'config.json') });
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, offline: true }));

      expect(ModelNotFoundError.isInstance(error) && error.reason).toBe('missing_folder');
      expect(error.message).toMatch(/missing/);
    });

    it('should use the cached snapshot when the hub cannot be reached', async () => {
      const first = await downloadHubSnapshot({ ...base(), repo: BLIP });
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 503 }, times: 10 });

      expect(await downloadHubSnapshot({ ...base(), repo: BLIP })).toEqual(first);
    });

    it('should keep revisions apart: a tag, a commit sha, and a branch that moved', async () => {
      const tagged = await hub.serve(BLIP, undefined, { revision: 'v1.0' }, { ...blip, 'config.json': Buffer.from('{"model_type":"blip","v":1}') });
      try {
        const byTag = await downloadHubSnapshot({ ...base(), repo: BLIP, revision: 'v1.0' });
        expect(byTag.commit).toBe(tagged.commit);
        expect(await readFile(path.join(byTag.folder, 'config.json'), 'utf8')).toBe('{"model_type":"blip","v":1}');
        expect(hub.requests.find((entry) => entry.route === 'model-info')!.url).toBe(`/api/models/${BLIP}/revision/v1.0?blobs=true`);

        const byCommit = await downloadHubSnapshot({ ...base(), repo: BLIP, revision: blipMain.commit });
        expect(byCommit.commit).toBe(blipMain.commit);
        expect((await readFile(path.join(byCommit.folder, 'config.json'))).equals(blip['config.json']!)).toBe(true);
        // A commit never moves: found again with no request, online or offline.
        hub.clearRequests();
        expect(await downloadHubSnapshot({ ...base(), repo: BLIP, revision: blipMain.commit })).toEqual(byCommit);
        expect(hub.requests).toEqual([]);
        expect(await downloadHubSnapshot({ ...base(), repo: BLIP, revision: blipMain.commit, offline: true })).toEqual(byCommit);
        expect(await downloadHubSnapshot({ ...base(), repo: BLIP, revision: 'v1.0', offline: true })).toEqual(byTag);
      } finally {
        await hub.serve(BLIP, undefined, {}, blip);
      }
    });
  });

  describe('mirrors', () => {
    it('should take sizes and sha256 from the tree API when the model info leaves them out', async () => {
      const mirror = new HubStandIn({ modelInfoBlobs: false });
      await mirror.start();
      try {
        await mirror.serve(BLIP, undefined, {}, blip);
        const snapshot = await downloadHubSnapshot({ ...base(), endpoint: mirror.endpoint, repo: BLIP });

        expect(snapshot.files.find((file) => file.path === 'model.safetensors')!.sha256).toBe(sha256(blip['model.safetensors']!));
        expect(mirror.requests.filter((entry) => entry.route === 'model-info' || entry.route === 'tree').map((entry) => entry.url)).toEqual([
          `/api/models/${BLIP}/revision/main?blobs=true`,
          `/api/models/${BLIP}/tree/${snapshot.commit}?recursive=true`,
        ]);
        // Another host, another cache entry: the mirror's copy is not the hub's.
        expect(snapshot.folder).toContain(new URL(mirror.endpoint).port);
        expect(snapshot.folder).not.toContain(new URL(hub.endpoint).port);
      } finally {
        await mirror.stop();
      }
    });
  });

  describe('endpoint and token', () => {
    it('should read HF_ENDPOINT, and VQA_LLM_HUB_URL as its older alias', async () => {
      process.env.HF_ENDPOINT = `${hub.endpoint}/`;
      const snapshot = await downloadHubSnapshot({ cacheDir, repo: VLE });
      expect(snapshot.files.length).toBe(4);
      expect(hub.requests.length).toBeGreaterThan(0);

      delete process.env.HF_ENDPOINT;
      process.env.VQA_LLM_HUB_URL = hub.endpoint;
      hub.clearRequests();
      expect(await downloadHubSnapshot({ cacheDir, repo: VLE })).toEqual(snapshot);
      expect(hub.requests.map((entry) => entry.route)).toEqual(['model-info']);
    });

    it('should reject an endpoint that is not an http(s) URL, naming where it came from', async () => {
      process.env.HF_ENDPOINT = 'hf-mirror.com';
      const fromEnv = await rejection(downloadHubSnapshot({ cacheDir, repo: VLE }));
      expect(InvalidOptionError.isInstance(fromEnv)).toBe(true);
      expect(fromEnv.message).toMatch(/"hf-mirror\.com" \(from HF_ENDPOINT\)/);

      const fromOption = await rejection(downloadHubSnapshot({ cacheDir, repo: VLE, endpoint: 'ftp://example.com' }));
      expect(InvalidOptionError.isInstance(fromOption)).toBe(true);
      expect(fromOption.message).toMatch(/endpoint option/);
    });

    it('should reject a malformed repo id before any request', async () => {
      for (const repo of ['', 'a/b/c', '../etc', 'owner/name.git']) {
        const error = await rejection(downloadHubSnapshot({ ...base(), repo }));
        expect(InvalidOptionError.isInstance(error)).toBe(true);
      }
      expect(hub.requests).toEqual([]);
    });

    it('should send HF_TOKEN to the endpoint origin and never to the CDN origin', async () => {
      process.env.HF_TOKEN = TOKEN;
      const snapshot = await downloadHubSnapshot({ ...base(), repo: PRIVATE });

      expect(snapshot.files.map((file) => file.path)).toEqual(BLIP_WANTED);
      const toHub = hub.requests.filter((entry) => entry.origin === 'hub');
      const toCdn = hub.requests.filter((entry) => entry.origin === 'cdn');
      expect(toCdn.length).toBeGreaterThan(0);
      expect(toHub.every((entry) => entry.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(toCdn.filter((entry) => entry.authorization !== undefined)).toEqual([]);
    });

    it('should send no token to a public repo when none is set', async () => {
      await downloadHubSnapshot({ ...base(), repo: BLIP });
      expect(hub.requests.filter((entry) => entry.authorization !== undefined)).toEqual([]);
    });
  });

  describe('errors', () => {
    it('should answer 401 for a private repo without a token with an error naming HF_TOKEN and the repo page', async () => {
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: PRIVATE }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('unauthorized');
      expect(error.message).toContain('HF_TOKEN');
      expect(error.message).toContain(`${hub.endpoint}/${PRIVATE}`);
    });

    it('should say when the hub refuses the token itself', async () => {
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, token: 'hf_not_a_real_token' }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('unauthorized');
      expect(error.message).toMatch(/refused the token in HF_TOKEN/);
    });

    it('should tell a gated repo (403 GatedRepo) from a missing one', async () => {
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 403, code: 'GatedRepo', message: 'Access to model test-org/blip-like is restricted' } });
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, token: TOKEN }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('unauthorized');
      expect(error.message).toMatch(/gated: accept its conditions on http.*test-org\/blip-like/);
    });

    it('should say whether the repo, the revision or the file is missing (404)', async () => {
      const repo = await rejection(downloadHubSnapshot({ ...base(), repo: 'test-org/nothing-here', token: TOKEN }));
      expect(ModelNotFoundError.isInstance(repo) && repo.reason).toBe('missing_repo');
      expect(repo.message).toContain('test-org/nothing-here');

      const revision = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, revision: 'v9' }));
      expect(ModelNotFoundError.isInstance(revision) && revision.reason).toBe('missing_revision');
      expect(revision.message).toContain('"v9"');

      hub.inject({ route: 'resolve', file: 'vocab.txt', fault: { type: 'status', status: 404, code: 'EntryNotFound', message: 'Entry not found' } });
      const file = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP }));
      expect(ModelNotFoundError.isInstance(file) && file.reason).toBe('missing_file');
      expect(file.message).toContain('vocab.txt');
    });

    it('should honour Retry-After on 429 and carry on', async () => {
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } }, times: 2 });
      hub.inject({ route: 'resolve', file: 'model.safetensors', fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } } });
      const snapshot = await downloadHubSnapshot({ ...base(), repo: BLIP, retry: { minDelayMs: 60_000, maxDelayMs: 60_000 } });

      expect(snapshot.files.length).toBe(BLIP_WANTED.length);
      expect(hub.requests.filter((entry) => entry.route === 'model-info').map((entry) => entry.status)).toEqual([429, 429, 200]);
    });

    it('should give up on 429 after the attempts allowed, with an error saying the hub rate-limits', async () => {
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } }, times: 10 });
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, retry: { attempts: 3 } }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('rate_limited');
      expect(error.message).toMatch(/rate-limits.*429 Too Many Requests 3 times/);
      expect(hub.requests.filter((entry) => entry.route === 'model-info').length).toBe(3);
    });

    it('should fail at once when Retry-After asks for longer than it may wait', async () => {
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 429, headers: { 'retry-after': '3600' } } });
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('rate_limited');
      expect(error.message).toMatch(/asked to wait 3600 s/);
      expect(hub.requests.length).toBe(1);
    });

    it('should retry 5xx answers from the hub and the CDN', async () => {
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 502 } });
      hub.inject({ route: 'cdn', file: 'model.safetensors', fault: { type: 'status', status: 503 }, times: 2 });
      const snapshot = await downloadHubSnapshot({ ...base(), repo: BLIP });

      expect((await readFile(path.join(snapshot.folder, 'model.safetensors'))).equals(blip['model.safetensors']!)).toBe(true);
      expect(hub.requests.filter((entry) => entry.route === 'cdn').map((entry) => entry.status)).toEqual([503, 503, 200]);
    });

    it('should report a hub that keeps failing as an http_error after the retries', async () => {
      hub.inject({ route: 'model-info', fault: { type: 'status', status: 500 }, times: 10 });
      const error = await rejection(downloadHubSnapshot({ ...base(), repo: BLIP, retry: { attempts: 2, minDelayMs: 1 } }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('http_error');
      expect(error.message).toMatch(/500.*2 times/);
    });

    it('should report an unreachable hub as a network error naming the endpoint', async () => {
      const error = await rejection(downloadHubSnapshot({ ...base(), endpoint: 'http://127.0.0.1:1', repo: BLIP, retry: { attempts: 2, minDelayMs: 1 } }));

      expect(ModelDownloadError.isInstance(error) && error.reason).toBe('network');
      expect(error.message).toContain('http://127.0.0.1:1');
      expect(error.message).toMatch(/HF_ENDPOINT/);
    });

    it('should stop at once when aborted', async () => {
      const controller = new AbortController();
      controller.abort(new Error('stop'));
      await expect(downloadHubSnapshot({ ...base(), repo: BLIP, signal: controller.signal })).rejects.toThrow('stop');
      expect(existsSync(path.join(cacheDir, 'hub-snapshots'))).toBe(false);
    });
  });
});
