// `models/export.py --checkpoint owner/name` as users run it against huggingface.co, here against a hub stand-in on
// 127.0.0.1 (test/helpers/hub-stand-in.ts) that answers what huggingface_hub's snapshot_download asks: the revision
// look-up, the tree listing, HEAD/GET of /resolve/ with the 307 to /api/resolve-cache/ for files in git and the 302
// to another origin (the "CDN") for LFS files. The checkpoints are the BLIP ones transformers saved for the upstream
// parity suite (test/output/upstream/blip/<variant>/checkpoint) and the committed iflytek/VLE one; each is exported
// from the hub and compared, file by file (sha256 in the manifests), with the export of the same local folder.
// HTTP(S)_PROXY point at the stand-in, so a request for any other host would be seen and refused. About 2 minutes
// on 2 cores, nearly all of it the Python children importing torch (11 exporter runs, 6 of them failing on purpose).
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { root, toTensor, type TensorJson } from '../helpers/fixtures.js';
import { HubStandIn, withoutHubVariables, type HubRequest, type ServedRevision } from '../helpers/hub-stand-in.js';
import { describeUpstream, readUpstreamJson, upstreamPath } from './upstream-output.js';

const python = join(root, '.venv', 'bin', 'python');
const exporter = join(root, 'models', 'export.py');
const vleCheckpoint = join(root, 'test', 'fixtures', 'upstream', 'vle-small', 'checkpoint');
/** One export of these small checkpoints takes 10–40 s (most of it importing torch); a hung one is killed. */
const CHILD_TIMEOUT_MS = 240_000;
const TEST_TIMEOUT_MS = 300_000;

const TIED = 'test-org/blip-tied';
const UNTIED = 'test-org/blip-untied';
const VLE = 'test-org/vle-small';
const UNTIED_TOKEN = 'hf_stand_in_untied_reader';

interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** stdout and stderr, for assertion messages. */
  output: string;
}

interface Manifest {
  kind: string;
  name: string;
  source: { checkpoint: string; revision: string };
  opset: number;
  graphs: Record<string, unknown>;
  files: Record<string, { sha256: string; bytes: number }>;
}

interface BlipReference {
  images: { pixelValues: TensorJson }[];
  generation: { name: string; input: number; options: Record<string, number | string>; tokenIds: number[]; text: string }[];
}

const running = new Set<ChildProcess>();

/** Runs the venv's Python; killed (SIGKILL) after `timeoutMs`, and by afterAll if a test gives up on it. */
function runPython(args: string[], env: Record<string, string>, timeoutMs = CHILD_TIMEOUT_MS): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(python, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: Error) => {
      clearTimeout(timer);
      running.delete(child);
      if (error) stderr += `\nspawn ${python}: ${error.message}`;
      const output = `exit ${code ?? signal}${timedOut ? ` (killed after ${timeoutMs} ms)` : ''}\n--- stdout\n${stdout.slice(-4000)}\n--- stderr\n${stderr.slice(-4000)}`;
      resolve({ code, signal, timedOut, stdout, stderr, output });
    };
    child.on('error', (error) => finish(null, null, error));
    child.on('close', (code, signal) => finish(code, signal));
  });
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');
const readManifest = (folder: string): Manifest => JSON.parse(readFileSync(join(folder, 'vqa-llm.json'), 'utf8')) as Manifest;
const sorted = (items: Iterable<string>): string[] => [...items].sort();

describeUpstream('blip', 'models/export.py with a hub id: downloads from a hub stand-in and exports as from the local folder', () => {
  const hub = new HubStandIn();
  let work: string;
  let tied: ServedRevision;
  /** The untied checkpoint as a hub repo holding pytorch_model.bin and no safetensors (see prepareUntied). */
  let untiedReady: Promise<ServedRevision>;
  const tiedCheckpoint = upstreamPath('blip', 'tied', 'checkpoint');
  const untiedCheckpoint = upstreamPath('blip', 'untied', 'checkpoint');

  /** A fresh HF_HOME (and HF_HUB_CACHE under it) for one or more runs. */
  const newHome = (name: string): string => {
    const home = join(work, 'homes', name);
    mkdirSync(home, { recursive: true });
    return home;
  };

  interface HubRunOptions {
    token?: string;
    args?: string[];
    env?: Record<string, string>;
  }
  const exportFromHub = (family: 'blip' | 'vle', checkpoint: string, out: string, home: string, options: HubRunOptions = {}): Promise<RunResult> =>
    runPython([exporter, family, '--checkpoint', checkpoint, '--out', out, ...(options.args ?? [])], {
      ...withoutHubVariables(process.env),
      ...hub.environment(home, options.token),
      PYTHONUNBUFFERED: '1',
      ...options.env,
    });

  const exportLocally = (family: 'blip' | 'vle', checkpoint: string, out: string): Promise<RunResult> =>
    runPython([exporter, family, '--checkpoint', checkpoint, '--out', out], { ...withoutHubVariables(process.env), HF_HUB_OFFLINE: '1', PYTHONUNBUFFERED: '1' });

  /** The requests about `repo` that name a file outside `wanted` (HEAD or GET, any route). */
  const unwantedFileRequests = (repo: string, wanted: string[]): HubRequest[] =>
    hub.requests.filter((entry) => entry.repo === repo && entry.file !== undefined && !wanted.includes(entry.file));

  /** The local export's files and graphs, which a hub export must reproduce byte for byte. */
  const expectSameExport = (fromHub: string, local: string): void => {
    const [hubManifest, localManifest] = [readManifest(fromHub), readManifest(local)];
    // The BLIP local exports are the upstream outputs': older than the exporter, they differ for that reason alone.
    const hint = `${fromHub} against ${local} (if the upstream outputs predate an exporter change: python models/make_upstream_fixtures.py --only blip)`;
    expect(hubManifest.kind, hint).toBe(localManifest.kind);
    expect(hubManifest.opset, hint).toBe(localManifest.opset);
    expect(hubManifest.graphs, hint).toEqual(localManifest.graphs);
    expect(hubManifest.files, hint).toEqual(localManifest.files);
    for (const file of Object.keys(localManifest.files).filter((path) => path.endsWith('.onnx'))) {
      expect(sha256(join(fromHub, file)), `${file}: ${hint}`).toBe(sha256(join(local, file)));
    }
  };

  /**
   * transformers 5 ignores save_pretrained(safe_serialization=False), so the "untied" variant is saved as
   * model.safetensors too; the hub repo here holds it as pytorch_model.bin (torch.save of the same tensors), as
   * older hub repos do, and no safetensors. If the generator ever writes the .bin itself, that is used as is.
   */
  async function prepareUntied(): Promise<ServedRevision> {
    const folder = join(work, 'repos', 'blip-untied');
    mkdirSync(folder, { recursive: true });
    for (const name of readdirSync(untiedCheckpoint).filter((item) => !item.endsWith('.safetensors'))) copyFileSync(join(untiedCheckpoint, name), join(folder, name));
    if (!existsSync(join(folder, 'pytorch_model.bin'))) {
      const converted = await runPython(
        ['-c', 'import sys, torch; from safetensors.torch import load_file; torch.save(load_file(sys.argv[1]), sys.argv[2])', join(untiedCheckpoint, 'model.safetensors'), join(folder, 'pytorch_model.bin')],
        withoutHubVariables(process.env),
      );
      if (converted.code !== 0) throw new Error(`converting the untied checkpoint to pytorch_model.bin failed:\n${converted.output}`);
    }
    // Private, and with the TensorFlow and Flax weights BLIP repos also hold: neither may be downloaded.
    return hub.serve(UNTIED, folder, { token: UNTIED_TOKEN }, { 'tf_model.h5': 'decoy: TensorFlow weights', 'flax_model.msgpack': 'decoy: Flax weights', 'README.md': '# blip-untied\n' });
  }

  beforeAll(async () => {
    if (!existsSync(python)) throw new Error(`${python} is missing: run sh models/venv.sh (npm run fixtures:upstream makes it)`);
    work = mkdtempSync(join(tmpdir(), 'vqa-llm-hub-export-'));
    await hub.start();
    // As Salesforce/blip-image-captioning-*: the safetensors beside a pytorch_model.bin and TensorFlow weights. The
    // decoys are not checkpoints: downloading one is a failure of its own, loading one would fail the export.
    tied = await hub.serve(TIED, tiedCheckpoint, {}, {
      'pytorch_model.bin': 'decoy: the exporter must take model.safetensors',
      'tf_model.h5': 'decoy: TensorFlow weights',
      'README.md': '# blip-tied\n',
    });
    untiedReady = prepareUntied();
    untiedReady.catch(() => undefined); // awaited (and reported) by the test that uses it
  });

  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await hub.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it(
    'should download only the configs, tokenizer files and model.safetensors of a public repo, and export them exactly as the local folder',
    async () => {
      const home = newHome('tied');
      const out = join(work, 'out', 'blip-tied');
      hub.clearRequests();
      const result = await exportFromHub('blip', TIED, out, home);
      expect(result.code, result.output).toBe(0);

      // Exactly the checkpoint's own files, each fetched once: the decoy .bin and .h5, README.md and .gitattributes
      // are not even asked about.
      const wanted = sorted(readdirSync(tiedCheckpoint));
      expect(wanted).toContain('model.safetensors');
      expect(sorted(hub.downloads(TIED))).toEqual(wanted);
      expect(unwantedFileRequests(TIED, wanted)).toEqual([]);
      // Files are fetched at the commit the revision resolved to, not at 'main' (which may move meanwhile).
      const fileRequests = hub.requests.filter((entry) => entry.origin === 'hub' && entry.file !== undefined);
      expect(fileRequests.length).toBeGreaterThan(0);
      expect(new Set(fileRequests.map((entry) => entry.revision))).toEqual(new Set([tied.commit]));
      // The safetensors came from the CDN origin, the rest through /api/resolve-cache/.
      expect(hub.requests.filter((entry) => entry.origin === 'cdn').map((entry) => entry.file)).toEqual(['model.safetensors']);
      // No token anywhere, nothing but loopback.
      expect(hub.requests.filter((entry) => entry.authorization !== undefined)).toEqual([]);
      expect(hub.foreignRequests()).toEqual([]);

      // The manifest records the hub id and the commit, not 'main'.
      const manifest = readManifest(out);
      expect(manifest.source).toEqual({ checkpoint: TIED, revision: tied.commit });
      expect(manifest.name).toBe('blip-tied');
      expectSameExport(out, upstreamPath('blip', 'tied', 'model'));

      // huggingface_hub kept to HF_HUB_CACHE: the snapshot is there, named by the commit, and the user's cache is untouched.
      const repoCache = join(home, 'hf-home', 'hub', 'models--test-org--blip-tied');
      expect(readFileSync(join(repoCache, 'refs', 'main'), 'utf8').trim()).toBe(tied.commit);
      expect(sorted(readdirSync(join(repoCache, 'snapshots', tied.commit)))).toEqual(wanted);
      expect(existsSync(join(homedir(), '.cache', 'huggingface', 'hub', 'models--test-org--blip-tied'))).toBe(false);

      // And the runtime captions with it as transformers does.
      const reference = readUpstreamJson<BlipReference>('blip', 'tied', 'reference.json');
      const captioner = await BlipCaptioner.load(out, { workers: 0 });
      try {
        for (const testCase of reference.generation.filter((entry) => entry.name === 'greedy' || entry.name === 'beam3-prefix')) {
          const result = await captioner.captionPixels(toTensor(reference.images[testCase.input]!.pixelValues), testCase.options);
          expect(result.tokenIds, testCase.name).toEqual(testCase.tokenIds);
          expect(result.caption, testCase.name).toBe(testCase.text);
        }
      } finally {
        await captioner.dispose();
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'should export again from the cache: online asking the hub only which commit main is, with HF_HUB_OFFLINE=1 asking nothing',
    async () => {
      const online = join(work, 'out', 'blip-tied-again');
      const offline = join(work, 'out', 'blip-tied-offline');
      hub.clearRequests();
      const [onlineResult, offlineResult] = await Promise.all([
        exportFromHub('blip', TIED, online, newHome('tied')),
        exportFromHub('blip', TIED, offline, newHome('tied'), { env: { HF_HUB_OFFLINE: '1' } }),
      ]);
      expect(onlineResult.code, onlineResult.output).toBe(0);
      expect(offlineResult.code, offlineResult.output).toBe(0);
      expect(hub.requests.map((entry) => `${entry.method} ${entry.route} ${entry.repo}@${entry.revision}`)).toEqual([`GET model-info ${TIED}@main`]);
      for (const out of [online, offline]) {
        expect(readManifest(out).source, out).toEqual({ checkpoint: TIED, revision: tied.commit });
        expectSameExport(out, upstreamPath('blip', 'tied', 'model'));
      }
    },
    TEST_TIMEOUT_MS,
  );

  it(
    'should send HF_TOKEN as a bearer token to the hub (never to the CDN), and take pytorch_model.bin from a repo without safetensors',
    async () => {
      const untied = await untiedReady;
      const out = join(work, 'out', 'blip-untied');
      hub.clearRequests();
      const result = await exportFromHub('blip', UNTIED, out, newHome('untied'), { token: UNTIED_TOKEN });
      expect(result.code, result.output).toBe(0);

      const wanted = sorted(untied.files.map((file) => file.path).filter((path) => /\.(json|txt|bin)$/.test(path)));
      expect(wanted).toContain('pytorch_model.bin');
      expect(sorted(hub.downloads(UNTIED))).toEqual(wanted);
      expect(unwantedFileRequests(UNTIED, wanted)).toEqual([]);
      expect(hub.foreignRequests()).toEqual([]);

      const toHub = hub.requests.filter((entry) => entry.origin === 'hub');
      const toCdn = hub.requests.filter((entry) => entry.origin === 'cdn');
      expect(toHub.length).toBeGreaterThan(0);
      expect(toHub.filter((entry) => entry.authorization !== `Bearer ${UNTIED_TOKEN}`)).toEqual([]);
      // huggingface_hub drops the token when the LFS redirect leaves the hub's origin.
      expect(toCdn.map((entry) => entry.file)).toEqual(['pytorch_model.bin']);
      expect(toCdn.filter((entry) => entry.authorization !== undefined)).toEqual([]);

      expect(readManifest(out).source).toEqual({ checkpoint: UNTIED, revision: untied.commit });
      // The same tensors as the generator's own export of the (safetensors) untied checkpoint.
      expectSameExport(out, upstreamPath('blip', 'untied', 'model'));
    },
    TEST_TIMEOUT_MS,
  );

  describe('when the checkpoint cannot be had', () => {
    const failures = new Map<string, { checkpoint: string; result: RunResult; out: string }>();

    it(
      'should exit non-zero, naming the reason, having downloaded and written nothing: missing repo, private repo without a token, unknown token, unknown revision, hub unreachable, mistyped local folder',
      async () => {
        await untiedReady; // the private repo
        hub.clearRequests();
        const unreachable = `http://127.0.0.1:${await closedPort()}`;
        // The reasons match huggingface_hub's messages today and the one-line ones proposed for the exporter.
        const cases: [string, string, HubRunOptions, RegExp][] = [
          ['missing repo', 'test-org/no-such-model', {}, /not found/i],
          ['private repo without a token', UNTIED, {}, /not found/i],
          ['unknown token', TIED, { token: 'hf_not_a_token_the_hub_knows' }, /401|Invalid credentials/i],
          ['unknown revision', TIED, { args: ['--revision', 'no-such-branch'] }, /revision[\s\S]*no-such-branch/i],
          ['hub unreachable', TIED, { env: { HF_ENDPOINT: unreachable } }, /reach|connect/i],
          ['mistyped local folder', join(work, 'no-such-checkpoint'), {}, /folder|repo id/i],
        ];
        await Promise.all(
          cases.map(async ([name, checkpoint, options]) => {
            const slug = `refused-${name.replace(/\W+/g, '-')}`;
            const out = join(work, 'out', slug);
            failures.set(name, { checkpoint, out, result: await exportFromHub('blip', checkpoint, out, newHome(slug), options) });
          }),
        );
        for (const [name, , , reason] of cases) {
          const { result, out } = failures.get(name)!;
          expect(result.timedOut, `${name}: ${result.output}`).toBe(false);
          expect(result.code, `${name}: ${result.output}`).not.toBe(0);
          expect(result.stderr, name).toMatch(reason);
          expect(existsSync(out), `${name}: ${out}`).toBe(false);
          const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
          console.info(`export.py, ${name}: exit ${result.code}, ${lines.length} stderr lines${result.stderr.includes('Traceback') ? ' (a traceback)' : ''}, the last: ${lines.at(-1)}`);
        }
        expect(hub.downloads()).toEqual([]);
        expect(hub.foreignRequests()).toEqual([]);
        expect(hub.requests.filter((entry) => entry.repo !== TIED && entry.repo !== UNTIED && entry.repo !== 'test-org/no-such-model')).toEqual([]);
      },
      TEST_TIMEOUT_MS,
    );

    // `vqa-llm models export` inherits the exporter's stderr: huggingface_hub's exceptions become one line (hub.py).
    it('should say so in one line naming the checkpoint, without a Python traceback', () => {
      expect(failures.size).toBe(6);
      for (const [name, { checkpoint, result }] of failures) {
        const lines = result.stderr.split('\n').filter((line) => line.trim() !== '');
        expect(result.stderr, name).not.toContain('Traceback');
        expect(lines, name).toHaveLength(1);
        expect(lines[0], name).toContain(checkpoint);
      }
    });
  });

  // The VLE checkpoint is committed by the VLE parity work (test/fixtures/upstream/vle-small); without it, skipped.
  describe.skipIf(!existsSync(join(vleCheckpoint, 'config.json')))('VLE (test/fixtures/upstream/vle-small)', () => {
    it(
      'should download the checkpoint (pytorch_model.bin, spm.model, configs) and export it exactly as the local folder',
      async () => {
        const served = await hub.serve(VLE, vleCheckpoint, {}, { 'README.md': '# vle-small\n' });
        hub.clearRequests();
        const fromHub = join(work, 'out', 'vle-hub');
        const local = join(work, 'out', 'vle-local');
        const [hubResult, localResult] = await Promise.all([exportFromHub('vle', VLE, fromHub, newHome('vle')), exportLocally('vle', vleCheckpoint, local)]);
        expect(hubResult.code, hubResult.output).toBe(0);
        expect(localResult.code, localResult.output).toBe(0);

        const wanted = sorted(readdirSync(vleCheckpoint));
        expect(sorted(hub.downloads(VLE))).toEqual(wanted);
        expect(unwantedFileRequests(VLE, wanted)).toEqual([]);
        expect(hub.requests.filter((entry) => entry.authorization !== undefined)).toEqual([]);
        expect(hub.foreignRequests()).toEqual([]);

        expect(readManifest(fromHub).source).toEqual({ checkpoint: VLE, revision: served.commit });
        expect(readManifest(local).source).toEqual({ checkpoint: vleCheckpoint, revision: 'local' });
        expectSameExport(fromHub, local);
      },
      TEST_TIMEOUT_MS,
    );
  });
});
