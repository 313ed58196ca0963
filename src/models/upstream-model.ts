// Upstream hub ids (Salesforce/blip-image-captioning-base, hfl/vle-base-for-vqa, a fine-tune of either) -> a model
// folder built on this machine: the checkpoint is downloaded by the hub client and converted by src/convert, with Node
// alone. The converted folder is cached per hub host, repository and revision, like a published folder.
import { readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';

import { familyOf } from '../convert/families.js';
import { listTemplates } from '../convert/template-store.js';
import { ConversionError } from '../errors/conversion-error.js';
import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import { ModelNotFoundError } from '../errors/model-not-found-error.js';
import { MODEL_ENV, isOfflineByEnv } from './defaults.js';
import { downloadHubSnapshot } from './hub/download-hub-snapshot.js';
import { parseHubEndpoint } from './hub/hub-endpoint.js';
import { acquireHubLock } from './hub/hub-lock.js';
import { checkModelFolder, type ModelKind } from './manifest.js';
import type { ResolveModelOptions } from './resolve-model.js';

/**
 * The hub ids the shipped templates were made for (their `upstream` lists), e.g.
 * `Salesforce/blip-image-captioning-base`. For these, resolution goes straight to the upstream checkpoint instead of
 * first looking for a published `vqa-llm.json`.
 *
 * @example
 * (await knownUpstreamRepos()).has('hfl/vle-base-for-vqa'); // true
 */
export async function knownUpstreamRepos(): Promise<Set<string>> {
  knownRepos ??= listTemplates().then((templates) => new Set(templates.flatMap((template) => template.upstream.map((id) => id.toLowerCase()))));
  return knownRepos;
}
let knownRepos: Promise<Set<string>> | undefined;

/** Where the folder converted from `repo` at `revision`, downloaded from `hubUrl`, is kept. */
export function convertedFolder(cacheDir: string, hubUrl: string, repo: string, revision: string): string {
  const { url } = parseHubEndpoint({ endpoint: hubUrl });
  const parsed = new URL(url);
  // Host, port and any path prefix (a mirror under a path), as the hub client keys its own cache.
  const prefix = parsed.pathname.replace(/^\/+|\/+$/g, '');
  const host = `${parsed.port ? `${parsed.hostname}_${parsed.port}` : parsed.hostname}${prefix ? `_${prefix}` : ''}`.replace(/[^\w.-]/g, '_');
  const [owner, name] = repo.split('/') as [string, string];
  return path.join(cacheDir, 'converted', host, owner, name, encodeURIComponent(revision));
}

/**
 * A cached model folder (converted or downloaded) when it is complete (and of `kind`), else undefined. A damaged
 * folder counts as absent, so that it is made again.
 *
 * @internal
 */
export async function cachedModelFolder(folder: string, kind: ModelKind | undefined): Promise<string | undefined> {
  if (!(await stat(folder).then((stats) => stats.isDirectory(), () => false))) return undefined;
  try {
    await checkModelFolder(folder, { kind });
    return folder;
  } catch (error) {
    if (ModelIntegrityError.isInstance(error) && error.reason !== 'wrong_kind') return undefined;
    throw error;
  }
}

export interface ResolveUpstreamOptions extends ResolveModelOptions {
  /** The spec as the caller wrote it, for messages and progress task names. */
  spec: string;
  repo: string;
  revision: string;
  /** The hub base URL in effect (the caller's `hubUrl`, else HF_ENDPOINT, ...): the cache key. */
  endpointUrl: string;
  cacheDir: string;
}

/**
 * Downloads the upstream checkpoint `repo@revision` (configs, tokenizer files and one weights format) and converts it
 * into a model folder in the cache; a later call finds that folder and makes no request. The downloaded checkpoint is
 * deleted once converted unless `keepCheckpoint` is set (the folder holds the same weights as float32).
 *
 * @internal resolveModel calls it for hub ids without a published vqa-llm.json.
 */
export async function resolveUpstreamModel(options: ResolveUpstreamOptions): Promise<string> {
  const { spec, repo, revision, endpointUrl, cacheDir, signal } = options;
  // resolveModel looked in the cache already; it is looked at again under the lock below.
  const folder = convertedFolder(cacheDir, endpointUrl, repo, revision);
  if (options.offline ?? isOfflineByEnv()) {
    throw new ModelNotFoundError(
      'missing_folder',
      `The model ${spec} has not been downloaded and converted yet (looked for ${folder}), and offline mode forbids downloading it from ${endpointUrl}.`,
      {
        hint: `Run \`vqa-llm models fetch ${spec}\` once with network access (without ${MODEL_ENV.offline} or --offline), set ${MODEL_ENV.cacheDir} to a cache that holds it, or point --caption-model/--vqa-model at a local folder.`,
      },
    );
  }

  // One process downloads and converts a repository at a time: the snapshot it deletes at the end must not be read by
  // another conversion (of another revision name for the same commit, too), and a second process for the same
  // revision then finds the finished folder.
  const release = await acquireHubLock(`${path.dirname(folder)}.lock`, {
    signal,
    onWait: () => options.onProgress?.({ status: 'start', task: `wait:${spec}` }),
  });
  try {
    const theirs = await cachedModelFolder(folder, options.kind);
    if (theirs) return theirs;
    const snapshot = await downloadHubSnapshot({
      repo,
      revision,
      // Only the caller's own endpoint: one from the environment is found again there, and its errors then name it.
      endpoint: options.hubUrl,
      cacheDir,
      offline: false,
      onProgress: options.onProgress,
      signal,
      fetch: options.fetch,
    });
    const kind = await kindOfCheckpoint(snapshot.folder, spec);
    if (options.kind !== undefined && kind !== options.kind) {
      throw new ModelIntegrityError('wrong_kind', `${spec} is a ${kind} checkpoint where a ${options.kind} model is needed.`, {
        hint: `Point ${options.kind === 'blip-captioner' ? '--caption-model' : '--vqa-model'} at a ${options.kind} model.`,
      });
    }
    const { convertCheckpoint } = await loadConverter();
    await convertCheckpoint({
      checkpoint: snapshot.folder,
      out: folder,
      name: repo.split('/')[1],
      source: { checkpoint: repo, revision: snapshot.commit },
      overwrite: true,
      templates: options.templates ?? templatesFromEnv(),
      onProgress: options.onProgress,
      signal,
    });
    if (!options.keepCheckpoint) await rm(snapshot.folder, { recursive: true, force: true });
    return folder;
  } finally {
    await release();
  }
}

// The converter (onnx-proto, the checkpoint readers) loads when a checkpoint is converted, not with every resolve. One
// promise for every caller: two models converting at once share one import rather than race two.
let converter: Promise<typeof import('../convert/convert-checkpoint.js')> | undefined;
const loadConverter = () => (converter ??= import('../convert/convert-checkpoint.js'));

function templatesFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env[MODEL_ENV.templates] ?? '').split(path.delimiter).filter((folder) => folder.trim() !== '');
}

async function kindOfCheckpoint(folder: string, spec: string): Promise<ModelKind> {
  const configFile = path.join(folder, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(configFile, 'utf8'));
  } catch (error) {
    throw new ConversionError('bad_config', `${spec}'s config.json cannot be read: ${(error as Error).message}.`, { file: configFile, cause: error });
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConversionError('bad_config', `${spec}'s config.json is not a JSON object.`, { file: configFile });
  }
  return familyOf(raw as Record<string, unknown>, configFile).kind;
}
