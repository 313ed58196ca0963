import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

import { InvalidOptionError } from '../errors/invalid-option-error.js';
import { ModelDownloadError } from '../errors/model-download-error.js';
import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import { ModelNotFoundError } from '../errors/model-not-found-error.js';
import { VqaLlmError } from '../errors/vqa-llm-error.js';
import type { ProgressCallback } from '../types.js';
import {
  DEFAULT_REVISION,
  MANIFEST_FILE,
  MODEL_ENV,
  defaultCacheDir,
  defaultHubToken,
  defaultModelsDir,
  expandHome,
  isOfflineByEnv,
} from './defaults.js';
import { ByteProgress } from './byte-progress.js';
import { parseHubEndpoint } from './hub/hub-endpoint.js';
import { scopedFetch } from './hub/scoped-fetch.js';
import { cachedModelFolder, convertedFolder, knownUpstreamRepos, resolveUpstreamModel } from './upstream-model.js';
import {
  MODEL_SETTINGS_HINT,
  checkModelFolder,
  isNotFound,
  parseManifest,
  readManifest,
  type ManifestFile,
  type ModelKind,
} from './manifest.js';

export interface ResolveModelOptions {
  /** Where bare names are looked up. Default: `VQA_LLM_MODELS`, else `~/.local/share/vqa-llm/models` (see `defaultModelsDir`). */
  modelsDir?: string;
  /** Where downloads are kept. Default: `VQA_LLM_CACHE`, else `~/.cache/vqa-llm`. */
  cacheDir?: string;
  /** Hub for `owner/name` specs. Default: `HF_ENDPOINT`, else `VQA_LLM_HUB_URL`, else `https://huggingface.co`. */
  hubUrl?: string;
  /** Hub revision (branch, tag or commit) when the spec has no `@revision`. Default `main`. */
  revision?: string;
  /** Refuse every network access. Default: true when `VQA_LLM_OFFLINE` is `1`/`true`. */
  offline?: boolean;
  /** Fail with `ModelIntegrityError('wrong_kind')` unless the folder holds this kind of model. */
  kind?: ModelKind;
  /**
   * Download progress under task `download:<spec>`: `start`, `progress`, `done` per file, then
   * `ready`. In `progress` events `loaded`/`total` count the current file's bytes and `progress` is
   * the percentage of the whole model, which never goes backwards and ends at 100.
   */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Replaces the global fetch (tests, proxies). */
  fetch?: typeof fetch;
  /** Keep an upstream checkpoint's downloaded files in the cache after converting them (default: deleted). */
  keepCheckpoint?: boolean;
  /**
   * Graph-template folders searched before the shipped ones when an upstream checkpoint is converted (templates made
   * with `python models/export.py template` for an architecture the package does not ship). Default:
   * `VQA_LLM_TEMPLATES`.
   */
  templates?: string | string[];
}

/** What a spec string names, before any file is touched. */
export type ModelSource =
  | { type: 'path'; folder: string }
  | { type: 'name'; name: string }
  | { type: 'hub'; repo: string; revision?: string }
  | { type: 'url'; url: string };

const HUB_REPO = /^([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*)(?:@(.+))?$/;
const BARE_NAME = /^[A-Za-z0-9][\w.-]*$/;

/**
 * Finds a model folder and returns its absolute path, downloading it first when needed. `spec` is:
 *
 * - a path (absolute, or starting with `./`, `../`, `~/`, or holding more than one `/`);
 * - a bare folder name, looked up in `modelsDir`;
 * - a hub repository `owner/name[@revision]`, fetched from `${hubUrl}/${repo}/resolve/${revision}/…`
 *   (a relative folder of that name, if one exists, wins, as in transformers);
 * - an `http(s)://` URL of a published folder.
 *
 * Downloads go to `cacheDir/hub/<host>/<owner>/<name>/<revision>` or `cacheDir/url/<host>/<hash>`:
 * `vqa-llm.json` first, then every file it lists, each streamed to a temporary file, checked against
 * the manifest's size and sha256, and renamed into place; the finished folder appears atomically.
 * Later calls find it there and make no request, so a branch such as `main` is not re-checked for
 * updates: pin a commit, or delete the cache folder to refresh it.
 *
 * Every folder returned has a valid manifest and every listed file with its listed size.
 *
 * @throws ModelNotFoundError `missing_folder` (no such folder, or offline and not cached), `unknown_source`.
 * @throws ModelIntegrityError from the folder check (`missing_file`, `size_mismatch`, `bad_manifest`, `wrong_kind`).
 * @throws ModelDownloadError `http_error`, `network`, `checksum_mismatch`.
 * @throws InvalidOptionError for an empty spec or conflicting revisions.
 * @example
 * const caption = await resolveModel('blip-image-captioning-base'); // from the models directory
 * const vqa = await resolveModel('someone/vle-base-for-vqa-onnx@v1', {
 *   onProgress: (event) => event.status === 'progress' && console.log(event.progress?.toFixed(1)),
 * });
 */
export async function resolveModel(spec: string, options: ResolveModelOptions = {}): Promise<string> {
  options.signal?.throwIfAborted();
  const source = await parseModelSpec(spec);
  switch (source.type) {
    case 'path':
      return checkLocal(source.folder, options);
    case 'name': {
      const modelsDir = path.resolve(expandHome(options.modelsDir ?? defaultModelsDir()));
      const folder = path.join(modelsDir, source.name);
      if (!(await isDirectory(folder))) {
        const nearby = (await isDirectory(path.resolve(source.name))) ? ` A folder ./${source.name} exists here: write ./${source.name} to use it.` : '';
        throw new ModelNotFoundError(
          'missing_folder',
          `No model folder named "${source.name}" in the models directory ${modelsDir} (looked for ${folder}).${nearby}`,
          { hint: `${MODEL_SETTINGS_HINT} Create the folder with \`vqa-llm models export …\` (\`npm run models:test\` for the test models).` },
        );
      }
      return checkLocal(folder, options);
    }
    case 'hub': {
      if (source.revision !== undefined && options.revision !== undefined && source.revision !== options.revision) {
        throw new InvalidOptionError(
          'invalid_value',
          `The model spec "${spec}" names revision ${source.revision} but the revision option says ${options.revision}: keep one.`,
        );
      }
      const revision = source.revision ?? options.revision ?? DEFAULT_REVISION;
      const endpoint = parseHubEndpoint({ endpoint: options.hubUrl });
      const hubUrl = endpoint.url;
      const base = `${hubUrl}/${source.repo}/resolve/${encodeURIComponent(revision)}/`;
      const [owner, name] = source.repo.split('/') as [string, string];
      const cacheDir = cacheDirOf(options);
      const folder = path.join(cacheDir, 'hub', hostKey(hubUrl), owner, name, encodeURIComponent(revision));
      // A folder exported from this very checkpoint into the models directory (`vqa-llm models export
      // Salesforce/blip-image-captioning-base` writes <models>/blip-image-captioning-base) is the same model.
      const exported = source.revision === undefined && options.revision === undefined ? await exportedFolder(source.repo, options) : undefined;
      if (exported) return checkLocal(exported, options);
      const upstream = { ...options, spec, repo: source.repo, revision, endpointUrl: hubUrl, cacheDir };
      // A checkpoint converted earlier is used without any request, like a cached published folder.
      const converted = await cachedModelFolder(convertedFolder(cacheDir, hubUrl, source.repo, revision), options.kind);
      if (converted) {
        options.onProgress?.({ status: 'ready', task: `convert:${name}` });
        return converted;
      }
      // The upstream ids the shipped templates were made for go straight to their checkpoint.
      if ((await knownUpstreamRepos()).has(source.repo.toLowerCase())) return resolveUpstreamModel(upstream);
      return resolveRemote(
        {
          spec,
          base,
          folder,
          cacheDir,
          tokenOrigin: endpoint.origin,
          notFoundHint: hubNotFoundHint(source.repo, revision, hubUrl),
          // No published vqa-llm.json: an upstream checkpoint (a fine-tune of BLIP or VLE) to convert here.
          onMissingManifest: () => resolveUpstreamModel(upstream),
        },
        options,
      );
    }
    case 'url': {
      const folderKey = createHash('sha256').update(source.url).digest('hex').slice(0, 16);
      const cacheDir = cacheDirOf(options);
      const folder = path.join(cacheDir, 'url', hostKey(source.url), folderKey);
      return resolveRemote(
        { spec, base: source.url, folder, cacheDir, notFoundHint: `Check that ${source.url} serves a vqa-llm model folder (a ${MANIFEST_FILE} and the files it lists).` },
        options,
      );
    }
  }
}

/**
 * Classifies a spec without downloading anything (a relative `owner/name` folder that exists on
 * disk counts as a path).
 *
 * @example
 * await parseModelSpec('hfl/vle-base@abc123'); // { type: 'hub', repo: 'hfl/vle-base', revision: 'abc123' }
 * await parseModelSpec('vle-base-for-vqa'); // { type: 'name', name: 'vle-base-for-vqa' }
 */
export async function parseModelSpec(spec: string): Promise<ModelSource> {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new InvalidOptionError('invalid_value', 'The model spec must be a non-empty string: a folder path, a folder name, owner/name or a URL.');
  }
  const trimmed = spec.trim();
  if (/^https?:\/\//i.test(trimmed)) {
    let url: URL;
    try {
      url = new URL(trimmed);
    } catch (error) {
      throw new InvalidOptionError('invalid_value', `The model URL ${trimmed} is not a valid URL.`, { cause: error });
    }
    // A link to the manifest itself is a common way to share a folder: take its directory.
    url.pathname = url.pathname.replace(new RegExp(`/${MANIFEST_FILE.replace('.', '\\.')}$`), '/');
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    url.search = '';
    url.hash = '';
    return { type: 'url', url: url.href };
  }
  if (/^file:\/\//i.test(trimmed)) return { type: 'path', folder: fileURLToPath(trimmed) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed)) {
    throw new ModelNotFoundError('unknown_source', `Cannot load a model from ${trimmed}: only folders, hub ids (owner/name) and http(s) URLs are supported.`, {
      hint: MODEL_SETTINGS_HINT,
    });
  }

  const expanded = expandHome(trimmed);
  if (path.isAbsolute(expanded) || /^\.\.?([\\/]|$)/.test(expanded)) return { type: 'path', folder: path.resolve(expanded) };
  if (BARE_NAME.test(expanded) && expanded !== '.' && expanded !== '..') return { type: 'name', name: expanded };

  const hub = HUB_REPO.exec(expanded);
  if (hub) {
    if (!hub[3] && (await isDirectory(path.resolve(expanded)))) return { type: 'path', folder: path.resolve(expanded) };
    const repo = `${hub[1]}/${hub[2]}`;
    if (repo.includes('..') || repo.includes('--') || repo.endsWith('.git')) {
      throw new ModelNotFoundError('unknown_source', `"${trimmed}" is neither a folder nor a valid hub repository id.`, { hint: MODEL_SETTINGS_HINT });
    }
    return hub[3] ? { type: 'hub', repo, revision: hub[3] } : { type: 'hub', repo };
  }
  return { type: 'path', folder: path.resolve(expanded) };
}

interface RemoteSource {
  spec: string;
  /** Ends with `/`; files are fetched at `${base}${file}`. */
  base: string;
  /** Final cache folder, somewhere under `cacheDir`. */
  folder: string;
  cacheDir: string;
  /** The hub's origin, the only one HF_TOKEN is sent to; none for a plain URL. */
  tokenOrigin?: string;
  notFoundHint: string;
  /** What to do when the source has no vqa-llm.json (404) instead of failing. */
  onMissingManifest?: () => Promise<string>;
}

async function resolveRemote(source: RemoteSource, options: ResolveModelOptions): Promise<string> {
  const { folder } = source;
  if (await cachedModelFolder(folder, options.kind)) {
    options.onProgress?.({ status: 'ready', task: `download:${source.spec}` });
    return folder;
  }

  const offline = options.offline ?? isOfflineByEnv();
  if (offline) {
    throw new ModelNotFoundError(
      'missing_folder',
      `The model ${source.spec} is not in the cache (${folder}) and offline mode forbids downloading it from ${source.base}.`,
      {
        hint: `Download it once with network access (\`vqa-llm models fetch ${source.spec}\`, without ${MODEL_ENV.offline} or the offline option), set ${MODEL_ENV.cacheDir} to a cache that holds it, or point --caption-model/--vqa-model at a local folder.`,
      },
    );
  }

  const cacheRoot = path.dirname(folder);
  const stagingRoot = path.join(source.cacheDir, '.staging');
  await mkdir(stagingRoot, { recursive: true });
  // Staging inside the cache keeps the final rename on one filesystem, hence atomic.
  const staging = await mkdtemp(path.join(stagingRoot, `${path.basename(folder)}-`));
  try {
    const task = `download:${source.spec}`;
    const fetchImpl = options.fetch ?? globalThis.fetch;
    const manifestUrl = new URL(MANIFEST_FILE, source.base).href;
    options.onProgress?.({ status: 'start', task, file: MANIFEST_FILE });
    let manifestResponse: Response;
    try {
      manifestResponse = await request(manifestUrl, source, fetchImpl, options.signal);
    } catch (error) {
      if (source.onMissingManifest && ModelDownloadError.isInstance(error) && error.status === 404) return await source.onMissingManifest();
      throw error;
    }
    const manifestText = await manifestResponse.text();
    const manifest = parseManifest(manifestText, manifestUrl);
    options.onProgress?.({ status: 'done', task, file: MANIFEST_FILE });
    if (options.kind !== undefined && manifest.kind !== options.kind) {
      throw new ModelIntegrityError('wrong_kind', `${source.spec} is a ${manifest.kind} model (${manifest.name}) where a ${options.kind} model is needed.`, {
        hint: `Point ${options.kind === 'blip-captioner' ? '--caption-model' : '--vqa-model'} at a ${options.kind} model.`,
      });
    }

    const files = Object.entries(manifest.files);
    const progress = new ByteProgress(task, files.reduce((sum, [, entry]) => sum + entry.bytes, 0), options.onProgress);
    for (const [file, expected] of files) {
      progress.startFile(file, expected.bytes);
      const url = new URL(file.split('/').map(encodeURIComponent).join('/'), source.base).href;
      await downloadFile(url, path.join(staging, ...file.split('/')), file, expected, source, fetchImpl, options.signal, (bytes) => progress.add(bytes));
      progress.doneFile(file);
    }
    // The manifest goes in last, byte for byte as served: its presence marks a complete folder.
    await writeFile(path.join(staging, MANIFEST_FILE), manifestText);

    await mkdir(cacheRoot, { recursive: true });
    await publish(staging, folder, options);
    progress.ready();
    return folder;
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw error;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Moves the staging folder into place; a concurrent resolver that finished first wins. */
async function publish(staging: string, folder: string, options: ResolveModelOptions): Promise<void> {
  try {
    await rename(staging, folder);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'EPERM') throw error;
  }
  if (await cachedModelFolder(folder, options.kind)) return;
  // What is there is broken (a cache edited by hand): replace it.
  await rm(folder, { recursive: true, force: true });
  await rename(staging, folder);
}

async function downloadFile(
  url: string,
  destination: string,
  file: string,
  expected: ManifestFile,
  source: RemoteSource,
  fetchImpl: typeof fetch,
  signal: AbortSignal | undefined,
  onBytes: (bytes: number) => void,
): Promise<void> {
  const response = await request(url, source, fetchImpl, signal);
  await mkdir(path.dirname(destination), { recursive: true });
  const partial = `${destination}.part`;
  const hash = createHash('sha256');
  let received = 0;
  const mismatch = (problem: string) =>
    new ModelDownloadError('checksum_mismatch', `${file} downloaded from ${url} ${problem}; nothing was kept.`, {
      hint: 'The published folder does not match its own manifest: ask its publisher to upload it again, or try again if a proxy altered it.',
    });
  try {
    const body = (response.body ?? emptyBody()) as unknown as AsyncIterable<Uint8Array>;
    await pipeline(
      body,
      async function* (chunks: AsyncIterable<Uint8Array>) {
        for await (const chunk of chunks) {
          received += chunk.byteLength;
          // Stop at once rather than writing gigabytes a wrong server sends.
          if (received > expected.bytes) throw mismatch(`is longer than the ${expected.bytes} bytes its manifest lists`);
          hash.update(chunk);
          onBytes(chunk.byteLength);
          yield chunk;
        }
      },
      createWriteStream(partial),
      { signal },
    );
  } catch (error) {
    if (signal?.aborted || VqaLlmError.isInstance(error)) throw error;
    throw new ModelDownloadError('network', `Downloading ${url} failed after ${received} bytes: ${(error as Error).message}.`, {
      hint: 'Try again; the download starts over.',
      cause: error,
    });
  }
  if (received !== expected.bytes) throw mismatch(`has ${received} bytes where its manifest lists ${expected.bytes}`);
  const digest = hash.digest('hex');
  if (digest !== expected.sha256) throw mismatch(`has sha256 ${digest} where its manifest lists ${expected.sha256}`);
  await rename(partial, destination);
}

async function request(url: string, source: RemoteSource, fetchImpl: typeof fetch, signal: AbortSignal | undefined): Promise<Response> {
  let response: Response;
  try {
    // Redirects are followed by scopedFetch, which drops the token on the way to another origin (the hub's CDN).
    ({ response } = await scopedFetch(url, { token: defaultHubToken(), tokenOrigin: source.tokenOrigin, fetch: fetchImpl, signal }));
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (VqaLlmError.isInstance(error)) throw error;
    const cause = (error as Error & { cause?: Error }).cause;
    throw new ModelDownloadError('network', `Could not reach ${url}: ${cause?.message ?? (error as Error).message}.`, {
      hint: `Check the network, or the hub address (${MODEL_ENV.hubEndpoint}, hubUrl); set ${MODEL_ENV.offline}=1 to use only local and cached models.`,
      cause: error,
    });
  }
  if (!response.ok) {
    // Free the connection: the error page is of no use.
    await response.body?.cancel().catch(() => undefined);
    const auth = response.status === 401 || response.status === 403;
    throw new ModelDownloadError('http_error', `GET ${url} answered ${response.status} ${response.statusText}.`.replace(' .', '.'), {
      status: response.status,
      hint: auth ? `The repository may be private or gated: set ${MODEL_ENV.hubToken} to a token that may read it. ${source.notFoundHint}` : source.notFoundHint,
    });
  }
  return response;
}

function hubNotFoundHint(repo: string, revision: string, hubUrl: string): string {
  return (
    `Check that the repository ${repo} exists on ${hubUrl} at revision ${revision} and holds a vqa-llm model folder ` +
    `(${MANIFEST_FILE} at its root, written by \`vqa-llm models export\`); set ${MODEL_ENV.hubEndpoint} or hubUrl for another hub.`
  );
}

/** `<modelsDir>/<name>` when its manifest says it was made from the hub repository `repo`. */
async function exportedFolder(repo: string, options: ResolveModelOptions): Promise<string | undefined> {
  const modelsDir = path.resolve(expandHome(options.modelsDir ?? defaultModelsDir()));
  const folder = path.join(modelsDir, repo.split('/')[1]!);
  const manifest = await readManifest(folder).catch(() => undefined);
  return manifest?.source?.checkpoint?.toLowerCase() === repo.toLowerCase() ? folder : undefined;
}

async function checkLocal(folder: string, options: ResolveModelOptions): Promise<string> {
  await checkModelFolder(folder, { kind: options.kind });
  return folder;
}

function cacheDirOf(options: ResolveModelOptions): string {
  return path.resolve(expandHome(options.cacheDir ?? defaultCacheDir()));
}

/** One cache subtree per host and port, so that a mirror's copy never passes for the hub's. */
function hostKey(url: string): string {
  const parsed = new URL(url);
  return (parsed.port ? `${parsed.hostname}_${parsed.port}` : parsed.hostname).replace(/[^\w.-]/g, '_');
}

async function isDirectory(folder: string): Promise<boolean> {
  try {
    return (await stat(folder)).isDirectory();
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}
