import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { InvalidOptionError } from '../../errors/invalid-option-error.js';
import { ModelDownloadError } from '../../errors/model-download-error.js';
import { ModelIntegrityError } from '../../errors/model-integrity-error.js';
import { ModelNotFoundError } from '../../errors/model-not-found-error.js';
import { ByteProgress } from '../byte-progress.js';
import { DEFAULT_REVISION, MODEL_ENV, defaultCacheDir, defaultHubToken, expandHome, isOfflineByEnv } from '../defaults.js';
import { downloadHubFile } from './download-hub-file.js';
import { HubRepoCache } from './hub-cache.js';
import { parseHubEndpoint } from './hub-endpoint.js';
import { acquireHubLock } from './hub-lock.js';
import { DEFAULT_RETRY, DEFAULT_STALL_TIMEOUT_MS, openHubResponse, type HubRequestContext } from './hub-request.js';
import type { DownloadHubSnapshotOptions, HubFile, HubSnapshot } from './hub-types.js';
import { isWeightsIndex, selectCheckpointFiles, shardsOfIndex } from './select-checkpoint-files.js';

const REPO_ID = /^[A-Za-z0-9][\w.-]*(\/[A-Za-z0-9][\w.-]*)?$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Downloads files of an upstream Hugging Face model repository (a checkpoint: config, tokenizer, weights; no
 * vqa-llm.json) into the cache, for the converter to read, and returns the snapshot folder.
 *
 * One API request (`{endpoint}/api/models/{repo}/revision/{revision}?blobs=true`) resolves the revision to a commit
 * and lists the files with their sizes and LFS sha256; files come from `{endpoint}/{repo}/resolve/{commit}/{path}`
 * (LFS files through the hub's 302 to its CDN, which gets no token). Each file is checked (size, sha256 for LFS,
 * git blob id for small files) before it moves into `snapshots/<commit>/`; partial files are kept and continued
 * with Range requests by the next attempt or the next run; a lock per commit keeps two processes from writing the
 * same files. A second call finds the snapshot with that one API request, or with none when offline or when the
 * revision is a commit sha. An unreachable hub falls back to a complete cached snapshot of the revision.
 *
 * @throws InvalidOptionError for a malformed repo id or endpoint.
 * @throws ModelNotFoundError `missing_repo`, `missing_revision`, `missing_file` (404s, or a repo without weights),
 *   `missing_folder` (offline and not in the cache).
 * @throws ModelDownloadError `unauthorized` (401/403), `rate_limited` (429 after retries), `http_error`, `network`.
 * @throws ModelIntegrityError `checksum_mismatch`, `size_mismatch` naming the file (its partial is deleted).
 * @example
 * const snapshot = await downloadHubSnapshot({
 *   repo: 'Salesforce/blip-image-captioning-base',
 *   onProgress: (event) => {
 *     if (event.status === 'start' && !event.file) console.log(`downloading ${(event.total! / 1e6).toFixed(0)} MB`);
 *   },
 * });
 * snapshot.folder; // ~/.cache/vqa-llm/hub-snapshots/huggingface.co/Salesforce/blip-image-captioning-base/snapshots/<commit>
 */
export async function downloadHubSnapshot(options: DownloadHubSnapshotOptions): Promise<HubSnapshot> {
  options.signal?.throwIfAborted();
  const repo = checkRepo(options.repo);
  const revision = checkRevision(options.revision ?? DEFAULT_REVISION);
  const endpoint = parseHubEndpoint({ endpoint: options.endpoint });
  const cacheDir = path.resolve(expandHome(options.cacheDir ?? defaultCacheDir()));
  const cache = new HubRepoCache(cacheDir, endpoint.url, repo);
  const select = options.select ?? selectCheckpointFiles;
  const task = revision === DEFAULT_REVISION ? `download:${repo}` : `download:${repo}@${revision}`;
  const context: HubRequestContext = {
    endpoint,
    repo,
    revision,
    token: options.token ?? defaultHubToken(),
    fetch: options.fetch ?? globalThis.fetch,
    signal: options.signal,
    retry: { ...DEFAULT_RETRY, ...options.retry },
    stallTimeoutMs: options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS,
  };

  const cached = await findCached(cache, revision, select, options.select === undefined);
  // A commit never changes: once its files are here, there is nothing to ask the hub.
  if (cached.snapshot && COMMIT.test(revision)) {
    options.onProgress?.({ status: 'ready', task });
    return cached.snapshot;
  }
  if (options.offline ?? isOfflineByEnv()) {
    if (cached.snapshot) {
      options.onProgress?.({ status: 'ready', task });
      return cached.snapshot;
    }
    throw new ModelNotFoundError('missing_folder', `${repo} at revision ${revision} is not in the cache (${cache.root})${cached.why ? `: ${cached.why}` : ''}, and offline mode forbids downloading it from ${endpoint.url}.`, {
      hint: `Download it once with network access (without ${MODEL_ENV.offline} or --offline), or set ${MODEL_ENV.cacheDir} to a cache that holds it.`,
    });
  }

  let listing: { commit: string; files: HubFile[] };
  try {
    // With a usable copy at hand, an unreachable hub falls back to it at once rather than after the retries.
    listing = await fetchListing(context, cached.snapshot ? 1 : undefined);
  } catch (error) {
    if (cached.snapshot && ModelDownloadError.isInstance(error) && (error.reason === 'network' || error.reason === 'http_error' || error.reason === 'rate_limited')) {
      options.onProgress?.({ status: 'ready', task });
      return cached.snapshot;
    }
    throw error;
  }
  const { commit } = listing;
  await cache.writeListing(commit, listing.files);
  await cache.writeRef(revision, commit);

  let selected = checkSelection(select(listing.files), listing.files, repo, revision, options.select === undefined);
  const expanded = await expandShards(cache, commit, selected, listing.files, repo, revision);
  if (expanded !== undefined && (await cache.missingFiles(commit, expanded)).length === 0) {
    options.onProgress?.({ status: 'ready', task });
    return snapshotOf(cache, commit, expanded);
  }

  const release = await acquireHubLock(cache.lockFile(commit), { signal: options.signal });
  try {
    const fileUrl = (file: string) => `${endpoint.url}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
    // A sharded checkpoint: its index comes first (a few KB), to learn the shards and say the full size.
    for (const index of await cache.missingFiles(commit, selected.filter((file) => isWeightsIndex(file.path)))) {
      await downloadHubFile(
        { file: index, url: fileUrl(index.path), partial: cache.partialFile(commit, index), destination: cache.filePath(commit, index.path), onOffset: () => undefined },
        context,
      );
    }
    selected = (await expandShards(cache, commit, selected, listing.files, repo, revision))!;
    // Another process may have finished while this one waited for the lock.
    const missing = await cache.missingFiles(commit, selected);
    const progress = new ByteProgress(task, missing.reduce((sum, file) => sum + file.size, 0), options.onProgress);
    options.onProgress?.({ status: 'start', task, total: missing.reduce((sum, file) => sum + file.size, 0) });
    for (const file of missing) {
      progress.startFile(file.path, file.size);
      // Count each byte once: a file restarted from 0 (a server that ignored Range) adds nothing until it passes
      // where it was, so the percentage never goes backwards and never passes 100.
      let counted = 0;
      await downloadHubFile(
        {
          file,
          url: fileUrl(file.path),
          partial: cache.partialFile(commit, file),
          destination: cache.filePath(commit, file.path),
          onOffset: (offset) => {
            if (offset > counted) {
              progress.add(offset - counted);
              counted = offset;
            }
          },
        },
        context,
      );
      progress.doneFile(file.path);
    }
    const stillMissing = await cache.missingFiles(commit, selected);
    if (stillMissing.length > 0) {
      throw new ModelIntegrityError('missing_file', `${stillMissing.map((file) => file.path).join(', ')} went missing from ${cache.snapshotFolder(commit)} during the download.`, {
        hint: 'Something else is deleting files in the cache: run the same command again.',
      });
    }
    progress.ready();
    return snapshotOf(cache, commit, selected);
  } finally {
    await release();
  }
}

/** The snapshot for `revision` when the cache holds every file the selection wants, or why not. */
async function findCached(
  cache: HubRepoCache,
  revision: string,
  select: (files: HubFile[]) => HubFile[],
  isDefault: boolean,
): Promise<{ snapshot?: HubSnapshot; why?: string }> {
  const commit = COMMIT.test(revision) ? revision : await cache.readRef(revision);
  if (commit === undefined) return { why: `no download of revision ${revision} was recorded` };
  const files = await cache.readListing(commit);
  if (files === undefined) return { why: `no file list for commit ${commit}` };
  let selected: HubFile[] | undefined;
  try {
    selected = await expandShards(cache, commit, checkSelection(select(files), files, '', revision, isDefault), files, '', revision);
  } catch {
    return { why: 'its files do not make a checkpoint' };
  }
  if (selected === undefined) return { why: 'the weights index is missing' };
  const missing = await cache.missingFiles(commit, selected);
  if (missing.length > 0) return { why: `${missing.length} file(s) missing (${missing.slice(0, 3).map((file) => file.path).join(', ')})` };
  return { snapshot: snapshotOf(cache, commit, selected) };
}

/**
 * The selection with the shards of any weights index added, read from the snapshot; undefined while an index is
 * not downloaded yet.
 */
async function expandShards(cache: HubRepoCache, commit: string, selected: HubFile[], all: HubFile[], repo: string, revision: string): Promise<HubFile[] | undefined> {
  const byPath = new Map(all.map((file) => [file.path, file]));
  const result = new Map(selected.map((file) => [file.path, file]));
  for (const index of selected.filter((file) => isWeightsIndex(file.path))) {
    let text: string;
    try {
      text = await readFile(cache.filePath(commit, index.path), 'utf8');
    } catch {
      return undefined;
    }
    let shards: string[];
    try {
      shards = shardsOfIndex(index.path, text);
    } catch (error) {
      throw new ModelIntegrityError('bad_manifest', `${repo ? `${repo}: ` : ''}${index.path} is not a weights index: ${(error as Error).message}.`);
    }
    for (const shard of shards) {
      const file = byPath.get(shard);
      if (file === undefined) {
        throw new ModelNotFoundError('missing_file', `${index.path} of ${repo} at revision ${revision} names the shard ${shard}, which the repository does not hold.`, {
          hint: 'The repository is incomplete: try another revision, or tell its owner.',
        });
      }
      result.set(shard, file);
    }
  }
  return [...result.values()].sort((left, right) => (left.path < right.path ? -1 : left.path > right.path ? 1 : 0));
}

function checkSelection(selected: HubFile[], all: HubFile[], repo: string, revision: string, isDefault: boolean): HubFile[] {
  if (!Array.isArray(selected)) throw new InvalidOptionError('invalid_value', 'The select option must return an array of the files it was given.');
  const byPath = new Map(all.map((file) => [file.path, file]));
  const unique = new Map<string, HubFile>();
  for (const file of selected) {
    const listed = byPath.get(file?.path);
    if (listed === undefined) {
      throw new ModelNotFoundError('missing_file', `The selection asks for ${String(file?.path)}, which ${repo || 'the repository'} does not hold at revision ${revision}.`);
    }
    unique.set(listed.path, listed);
  }
  if (isDefault && ![...unique.keys()].some((file) => /\.(safetensors|bin)(\.index\.json)?$/.test(file))) {
    const large = all.filter((file) => file.size > 1 << 20).map((file) => file.path);
    throw new ModelNotFoundError('missing_file', `${repo} at revision ${revision} has neither model.safetensors nor pytorch_model.bin (nor a sharded index of either)${large.length ? `; its large files: ${large.join(', ')}` : ''}.`, {
      hint: 'Only PyTorch checkpoints (safetensors or .bin) can be converted: pick a repository or revision that has one.',
    });
  }
  return [...unique.values()];
}

async function fetchListing(context: HubRequestContext, attempts?: number): Promise<{ commit: string; files: HubFile[] }> {
  const { endpoint, repo, revision } = context;
  const url = `${endpoint.url}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const info = (await readJson(url, context, attempts)) as { sha?: unknown; siblings?: unknown };
  const commit = typeof info.sha === 'string' ? info.sha : '';
  if (!COMMIT.test(commit) || !Array.isArray(info.siblings)) {
    throw new ModelDownloadError('http_error', `${url} answered without a commit sha and a file list; is ${endpoint.url} a Hugging Face hub?`, {
      hint: `Check the endpoint (${endpoint.setting}).`,
    });
  }
  type Sibling = { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; size?: unknown } };
  const siblings = info.siblings as Sibling[];
  if (siblings.every((sibling) => typeof sibling.size === 'number')) {
    return {
      commit,
      files: siblings
        .filter((sibling) => typeof sibling.rfilename === 'string')
        .map((sibling) => hubFile(sibling.rfilename as string, sibling.size as number, sibling.blobId, sibling.lfs?.sha256, sibling.lfs !== undefined)),
    };
  }
  // A mirror that leaves the sizes out of the model info: the tree API has them.
  const treeUrl = `${endpoint.url}/api/models/${repo}/tree/${commit}?recursive=true`;
  const tree = (await readJson(treeUrl, context, attempts)) as { type?: unknown; path?: unknown; size?: unknown; oid?: unknown; lfs?: { oid?: unknown } }[];
  if (!Array.isArray(tree)) throw new ModelDownloadError('http_error', `${treeUrl} answered without a file list.`, { hint: `Check the endpoint (${endpoint.setting}).` });
  return {
    commit,
    files: tree
      .filter((entry) => entry.type === 'file' && typeof entry.path === 'string' && typeof entry.size === 'number')
      .map((entry) => hubFile(entry.path as string, entry.size as number, entry.oid, entry.lfs?.oid, entry.lfs !== undefined)),
  };
}

function hubFile(filePath: string, size: number, blobId: unknown, sha256: unknown, lfs: boolean): HubFile {
  const file: HubFile = { path: filePath, size, lfs };
  if (typeof blobId === 'string') file.blobId = blobId;
  if (typeof sha256 === 'string' && /^[0-9a-f]{64}$/.test(sha256)) file.sha256 = sha256;
  return file;
}

async function readJson(url: string, context: HubRequestContext, attempts?: number): Promise<unknown> {
  const opened = await openHubResponse(url, context, { what: 'listing', attempts });
  try {
    return await opened.response.json();
  } catch (error) {
    if (context.signal?.aborted) throw context.signal.reason;
    throw new ModelDownloadError('network', `Reading ${url} failed: ${(error as Error).message}.`, { hint: 'Try again.', cause: error });
  } finally {
    opened.release();
  }
}

function snapshotOf(cache: HubRepoCache, commit: string, files: HubFile[]): HubSnapshot {
  return {
    folder: cache.snapshotFolder(commit),
    commit,
    files: files.map((file) => (file.sha256 === undefined ? { path: file.path, size: file.size } : { path: file.path, size: file.size, sha256: file.sha256 })),
  };
}

function checkRepo(repo: unknown): string {
  if (typeof repo !== 'string' || !REPO_ID.test(repo.trim()) || repo.includes('..') || repo.includes('--') || repo.endsWith('.git')) {
    throw new InvalidOptionError('invalid_value', `repo must be a hub repository id such as Salesforce/blip-image-captioning-base, not ${JSON.stringify(repo)}.`);
  }
  return repo.trim();
}

function checkRevision(revision: unknown): string {
  if (typeof revision !== 'string' || revision.trim() === '' || revision.includes('..')) {
    throw new InvalidOptionError('invalid_value', `revision must be a branch, tag or commit, not ${JSON.stringify(revision)}.`);
  }
  return revision.trim();
}
