import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

import { ModelDownloadError } from '../../errors/model-download-error.js';
import { ModelIntegrityError } from '../../errors/model-integrity-error.js';
import { VqaLlmError } from '../../errors/vqa-llm-error.js';
import { backoff, openHubResponse, sleep, type HubRequestContext } from './hub-request.js';
import type { HubFile } from './hub-types.js';

export interface HubFileDownload {
  file: HubFile;
  /** `{endpoint}/{repo}/resolve/{commit}/{path}`. */
  url: string;
  /** Where the partial bytes are kept between attempts and runs. */
  partial: string;
  /** Where the checked file goes. */
  destination: string;
  /** Called with the number of bytes of the file held so far (it may restart at 0 when a server ignores Range). */
  onOffset: (offset: number) => void;
}

/** Hashes of the bytes so far: sha256 (checked against LFS files) and, for files in git, the git blob sha1. */
class Digests {
  sha256: Hash = createHash('sha256');
  gitSha1: Hash | undefined;

  constructor(file: HubFile) {
    // A gigabyte of weights need not pay for a second hash that nothing checks.
    if (!file.lfs) this.gitSha1 = createHash('sha1').update(`blob ${file.size}\0`);
  }

  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.gitSha1?.update(chunk);
  }
}

/**
 * Downloads one file into `destination`, continuing a partial download with a Range request, after a cut
 * connection as after a restart (a server that ignores Range starts the file over), and checks it before it moves
 * into place: the size always, the sha256 for LFS files (from the listing or `X-Linked-Etag`), the git blob id for
 * files in git. A check that fails deletes the partial and is a ModelIntegrityError naming the file.
 *
 * @internal
 */
export async function downloadHubFile(download: HubFileDownload, context: HubRequestContext): Promise<void> {
  const { file, partial } = download;
  await mkdir(path.dirname(partial), { recursive: true });
  let offset = await sizeOf(partial);
  if (offset > file.size) {
    await rm(partial, { force: true });
    offset = 0;
  }
  let digests = new Digests(file);
  if (offset > 0) {
    for await (const chunk of createReadStream(partial, { end: offset - 1 })) digests.update(chunk as Buffer);
  }
  // An empty file needs no request, but still its (empty) partial to move into place.
  if (file.size === 0) await writeFile(partial, '');
  download.onOffset(offset);
  let sha256 = file.sha256;
  let failures = 0;

  while (offset < file.size) {
    const resumeFrom = offset;
    const opened = await openHubResponse(download.url, context, {
      what: 'file',
      file: file.path,
      headers: resumeFrom > 0 ? { range: `bytes=${resumeFrom}-`, 'accept-encoding': 'identity' } : { 'accept-encoding': 'identity' },
    });
    const { response } = opened;
    sha256 ??= /^[0-9a-f]{64}$/.test(opened.linkedEtag ?? '') ? opened.linkedEtag : undefined;
    if (opened.linkedSize !== undefined && opened.linkedSize !== file.size) {
      opened.release();
      await response.body?.cancel().catch(() => undefined);
      throw new ModelIntegrityError('size_mismatch', `${file.path}: the hub lists ${file.size} bytes but its download says ${opened.linkedSize} (X-Linked-Size).`, {
        hint: 'The listing and the file disagree: try again later; a mirror may hold a stale copy.',
      });
    }
    let handle: FileHandle;
    if (resumeFrom > 0 && (response.status !== 206 || contentRangeStart(response) !== resumeFrom)) {
      // The server sends the whole file (it ignored Range) or another range: start over from its first byte.
      if (response.status === 206) {
        opened.release();
        await response.body?.cancel().catch(() => undefined);
        await rm(partial, { force: true });
        offset = 0;
        digests = new Digests(file);
        download.onOffset(0);
        failures += 1;
        if (failures >= context.retry.attempts) throw networkError(download, 'the server answers Range requests with the wrong range', undefined);
        continue;
      }
      offset = 0;
      digests = new Digests(file);
      download.onOffset(0);
      handle = await open(partial, 'w');
    } else {
      handle = await open(partial, resumeFrom > 0 ? 'a' : 'w');
    }

    let failure: unknown;
    const before = offset;
    try {
      const body = (response.body ?? emptyBody()) as unknown as AsyncIterable<Uint8Array>;
      for await (const chunk of body) {
        opened.alive();
        if (offset + chunk.byteLength > file.size) {
          throw new ModelIntegrityError('size_mismatch', `${file.path} downloaded from ${opened.url} is longer than the ${file.size} bytes the hub lists; nothing was kept.`, {
            hint: 'Try again later; if it persists, the repository or the mirror serves a different file than it lists.',
          });
        }
        await handle.write(chunk);
        digests.update(chunk);
        offset += chunk.byteLength;
        download.onOffset(offset);
      }
    } catch (error) {
      failure = error;
    } finally {
      opened.release();
      await handle.close();
    }

    if (failure !== undefined) {
      if (context.signal?.aborted) throw context.signal.reason;
      if (VqaLlmError.isInstance(failure)) {
        await rm(partial, { force: true });
        throw failure;
      }
      // The disk failed (full, read-only), not the network: retrying would not help.
      if (typeof (failure as NodeJS.ErrnoException).syscall === 'string') throw failure;
      // A cut or stalled connection: keep what arrived and continue from there.
      failures = offset > before ? 1 : failures + 1;
      if (failures >= context.retry.attempts) throw networkError(download, opened.stalled() ? `no data for ${Math.round(context.stallTimeoutMs / 1000)} s` : describe(failure), failure);
      if (offset === before) await sleep(backoff(context.retry, failures), context.signal);
      continue;
    }
    if (offset < file.size) {
      await rm(partial, { force: true });
      throw new ModelIntegrityError('size_mismatch', `${file.path} downloaded from ${opened.url} has ${offset} bytes where the hub lists ${file.size}; nothing was kept.`, {
        hint: 'Try again later; if it persists, the repository or the mirror serves a different file than it lists.',
      });
    }
  }

  const mismatch = async (problem: string) => {
    await rm(partial, { force: true });
    return new ModelIntegrityError('checksum_mismatch', `${file.path} ${problem}; the download was deleted.`, {
      hint: 'It was altered on the way (a proxy, a broken mirror, a disk error): run the same command again to download it anew.',
    });
  };
  if (sha256 !== undefined) {
    const actual = digests.sha256.digest('hex');
    if (actual !== sha256) throw await mismatch(`has sha256 ${actual} where the hub lists ${sha256}`);
  } else if (digests.gitSha1 !== undefined && file.blobId !== undefined && /^[0-9a-f]{40}$/.test(file.blobId)) {
    const actual = digests.gitSha1.digest('hex');
    if (actual !== file.blobId) throw await mismatch(`has git blob id ${actual} where the hub lists ${file.blobId}`);
  }
  await mkdir(path.dirname(download.destination), { recursive: true });
  await rename(partial, download.destination);
}

function contentRangeStart(response: Response): number | undefined {
  const match = /^bytes\s+(\d+)-/.exec(response.headers.get('content-range') ?? '');
  return match ? Number(match[1]) : undefined;
}

function networkError(download: HubFileDownload, problem: string, cause: unknown): ModelDownloadError {
  return new ModelDownloadError('network', `Downloading ${download.file.path} from ${download.url} failed: ${problem}.`, {
    hint: 'Run the same command again: the download continues where it stopped.',
    cause,
  });
}

function describe(error: unknown): string {
  const cause = (error as Error & { cause?: Error }).cause;
  const message = (error as Error).message ?? String(error);
  return cause?.message ? `${message} (${cause.message})` : message;
}

async function sizeOf(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}
