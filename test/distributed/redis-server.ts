// A real redis-server (Debian's package) per test file: a free loopback port, a temporary folder, no persistence.
// Without redis-server on PATH the suites skip, unless VQA_LLM_REQUIRE_REDIS=1 (set by .ci/run), where they fail.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { describe } from 'vitest';

// Looked up on PATH rather than run: a spawn can fail for reasons of its own (memory pressure) and skip the suite.
export const redisAvailable = (process.env.PATH ?? '').split(delimiter).some((dir) => {
  try {
    accessSync(join(dir, 'redis-server'), constants.X_OK);
    return true;
  } catch {
    return false;
  }
});
const redisRequired = process.env.VQA_LLM_REQUIRE_REDIS === '1';

/** `describe` that needs redis-server: skipped without it, failing instead when VQA_LLM_REQUIRE_REDIS=1. */
export function describeWithRedis(name: string, body: () => void): void {
  if (!redisAvailable && redisRequired) {
    describe(name, () => {
      throw new Error('redis-server is not on PATH: apt-get install -y redis-server');
    });
    return;
  }
  describe.skipIf(!redisAvailable)(name, body);
}

export interface TestRedis {
  port: number;
  url: string;
  /** Kills the server (SIGKILL: an outage, not a shutdown); `restart()` brings it back. */
  outage(): Promise<void>;
  /** Kills it for good and removes its folder. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function launch(port: number, dir: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      output += String(chunk);
      if (output.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
  });
  return child;
}

/** Starts redis-server on a free loopback port; `stop()` it in afterAll. */
export async function startRedis(): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'vqa-llm-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined = await launch(port, dir);
  const kill = async (): Promise<void> => {
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    child = undefined;
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    outage: kill,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await kill();
      child = await launch(port, dir);
    },
  };
}
