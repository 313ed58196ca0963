import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { isNotFound } from '../manifest.js';
import type { HubFile } from './hub-types.js';

/**
 * Where one repository's downloads live in the cache, under `<cacheDir>/hub-snapshots/<host>/<owner>/<name>/`:
 *
 * - `refs/<revision>`: the commit the revision last resolved to (read offline);
 * - `listings/<commit>.json`: the hub's file list at that commit (sizes, sha256), so that a selection can be
 *   checked offline;
 * - `snapshots/<commit>/<path>`: finished files, each moved in by one rename after its checks;
 * - `incomplete/<blob>.incomplete`: partial downloads, named by content (sha256 or git blob id), continued with a
 *   Range request by the next attempt or the next process;
 * - `locks/<commit>.lock`: held while a process downloads into that snapshot.
 *
 * The host (with its port and any path prefix) is part of the key so that a mirror's copy never passes for the
 * hub's, and the commit so that a moved branch never mixes two versions' files.
 *
 * @internal
 */
export class HubRepoCache {
  readonly root: string;

  constructor(cacheDir: string, endpointUrl: string, repo: string) {
    this.root = path.join(cacheDir, 'hub-snapshots', endpointKey(endpointUrl), ...repo.split('/'));
  }

  snapshotFolder(commit: string): string {
    return path.join(this.root, 'snapshots', commit);
  }

  filePath(commit: string, file: string): string {
    return path.join(this.snapshotFolder(commit), ...file.split('/'));
  }

  lockFile(commit: string): string {
    return path.join(this.root, 'locks', `${commit}.lock`);
  }

  /** The partial download of `file`, named by its content where the hub says what that is. */
  partialFile(commit: string, file: HubFile): string {
    const key = file.sha256 ?? file.blobId ?? createHash('sha256').update(`${commit}\n${file.path}`).digest('hex');
    return path.join(this.root, 'incomplete', `${key.replace(/[^\w.-]/g, '_')}.incomplete`);
  }

  async readRef(revision: string): Promise<string | undefined> {
    const text = await readOptional(path.join(this.root, 'refs', encodeURIComponent(revision)));
    const commit = text?.trim();
    return commit && /^[0-9a-f]{40}$/.test(commit) ? commit : undefined;
  }

  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    await writeAtomically(path.join(this.root, 'refs', encodeURIComponent(revision)), commit);
  }

  async readListing(commit: string): Promise<HubFile[] | undefined> {
    const text = await readOptional(path.join(this.root, 'listings', `${commit}.json`));
    if (text === undefined) return undefined;
    try {
      const value = JSON.parse(text) as { files?: HubFile[] };
      return Array.isArray(value.files) ? value.files : undefined;
    } catch {
      // A listing cut short by a crash: as if absent (online calls write it again).
      return undefined;
    }
  }

  async writeListing(commit: string, files: HubFile[]): Promise<void> {
    await writeAtomically(path.join(this.root, 'listings', `${commit}.json`), `${JSON.stringify({ files }, null, 1)}\n`);
  }

  /** The files not yet in the snapshot with their listed size (a damaged or foreign file counts as missing). */
  async missingFiles(commit: string, files: HubFile[]): Promise<HubFile[]> {
    const missing: HubFile[] = [];
    for (const file of files) {
      const info = await stat(this.filePath(commit, file.path)).catch((error: unknown) => {
        if (isNotFound(error) || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
        throw error;
      });
      if (info === undefined || !info.isFile() || info.size !== file.size) missing.push(file);
    }
    return missing;
  }
}

/** Writes `text` to a unique temporary name and renames it over `file`: readers see the old or the new whole. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}-${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, text);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** `huggingface.co`, `127.0.0.1_8080`, `example.com_hf` (a path prefix kept): one folder per hub. */
function endpointKey(endpointUrl: string): string {
  const url = new URL(endpointUrl);
  const host = url.port ? `${url.hostname}_${url.port}` : url.hostname;
  const prefix = url.pathname.replace(/^\/+|\/+$/g, '');
  return (prefix ? `${host}_${prefix}` : host).replace(/[^\w.-]/g, '_');
}

/**
 * The cached snapshot that `revision` of `repo` last resolved to, with the hub's file list of that commit, when both
 * are on disk; no request, no lock. For callers that must decide synchronously whether a download is needed, such as
 * the LLM provider's `auto` choice.
 *
 * @internal
 */
export function findCachedHubSnapshot(cacheDir: string, endpointUrl: string, repo: string, revision: string): { folder: string; files: HubFile[] } | undefined {
  const cache = new HubRepoCache(cacheDir, endpointUrl, repo);
  let commit: string | undefined = /^[0-9a-f]{40}$/.test(revision) ? revision : undefined;
  try {
    commit ??= readFileSync(path.join(cache.root, 'refs', encodeURIComponent(revision)), 'utf8').trim();
    if (!/^[0-9a-f]{40}$/.test(commit)) return undefined;
    const listing = JSON.parse(readFileSync(path.join(cache.root, 'listings', `${commit}.json`), 'utf8')) as { files?: HubFile[] };
    return Array.isArray(listing.files) ? { folder: cache.snapshotFolder(commit), files: listing.files } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The path of `file` in that cached snapshot, when it is there.
 *
 * @internal
 */
export function findCachedHubFile(cacheDir: string, endpointUrl: string, repo: string, revision: string, file: string): string | undefined {
  const snapshot = findCachedHubSnapshot(cacheDir, endpointUrl, repo, revision);
  if (!snapshot) return undefined;
  const target = path.join(snapshot.folder, ...file.split('/'));
  return existsSync(target) ? target : undefined;
}
