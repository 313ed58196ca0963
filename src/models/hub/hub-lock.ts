import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

import { sleep } from './hub-request.js';

export interface HubLockOptions {
  signal?: AbortSignal;
  /** A lock not refreshed for this long is taken over (its holder died on another machine, or hangs). Default 60 s. */
  staleMs?: number;
  /** How often a waiter looks again. Default 200 ms. */
  pollMs?: number;
  /** Called once when the lock is held by someone else and this call starts waiting. */
  onWait?: () => void;
}

interface LockOwner {
  pid: number;
  host: string;
  nonce: string;
}

/**
 * Takes an exclusive lock on `file` (created with O_EXCL, so it works across processes on one cache), waiting
 * while another holder keeps it. The holder refreshes the file's time; a lock whose process is gone (same host)
 * or that has not been refreshed for `staleMs` is taken over, so a killed download never blocks the next one.
 * Resolves with the function that releases it.
 *
 * @internal
 * @example
 * const release = await acquireHubLock('/cache/.../locks/abc.lock');
 * try { await download(); } finally { await release(); }
 */
export async function acquireHubLock(file: string, options: HubLockOptions = {}): Promise<() => Promise<void>> {
  const staleMs = options.staleMs ?? 60_000;
  const pollMs = options.pollMs ?? 200;
  const owner: LockOwner = { pid: process.pid, host: os.hostname(), nonce: randomUUID() };
  await mkdir(path.dirname(file), { recursive: true });
  let waiting = false;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const stale = await staleOwner(file, staleMs);
    if (stale !== undefined) {
      // Move it aside under a unique name first, and put it back if what moved is not the lock judged stale:
      // of two waiters that both saw it stale, the later one must not remove the lock the first has just taken.
      const aside = `${file}.stale-${owner.nonce}`;
      const moved = await rename(file, aside).then(() => true, () => false);
      if (moved && (await readOwner(aside))?.nonce !== stale.nonce) await link(aside, file).catch(() => undefined);
      await rm(aside, { force: true });
      continue;
    }
    if (!waiting) {
      waiting = true;
      options.onWait?.();
    }
    await sleep(pollMs, options.signal);
  }

  const heartbeat = setInterval(() => {
    const now = new Date();
    utimes(file, now, now).catch(() => undefined);
  }, Math.max(1000, Math.floor(staleMs / 4)));
  heartbeat.unref();
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    clearInterval(heartbeat);
    // Remove only our own lock: after a takeover (we hung past staleMs) it belongs to someone else.
    const current = await readOwner(file);
    if (current?.nonce === owner.nonce) await rm(file, { force: true });
  };
}

/** The lock's owner when the lock is stale (its process gone, or not refreshed for `staleMs`), else undefined. */
async function staleOwner(file: string, staleMs: number): Promise<{ nonce?: string } | undefined> {
  const owner = await readOwner(file);
  const info = await stat(file).catch(() => undefined);
  if (info === undefined) return undefined;
  const old = Date.now() - info.mtimeMs > staleMs;
  // An empty file is a lock being written this very moment, unless it has sat empty for long.
  if (owner === undefined) return old ? {} : undefined;
  if (old || (owner.host === os.hostname() && !isAlive(owner.pid))) return { nonce: owner.nonce };
  return undefined;
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as Partial<LockOwner>;
    if (typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.nonce === 'string') return value as LockOwner;
  } catch {
    // Missing, empty or half-written: no owner to speak of.
  }
  return undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
