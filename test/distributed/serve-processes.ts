// `vqa-llm serve` as a user runs it, in a child process, on a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { modelsDir, root } from '../helpers/fixtures.js';

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** One sample of a Prometheus metric from /metrics, e.g. metric('vqa_llm_vision_encoder_runs_total{model="vle-vqa"}'). */
  metric(sample: string): Promise<number | undefined>;
  kill(): Promise<void>;
}

export async function startServe(extraArgs: string[], env: Record<string, string> = {}): Promise<ServeProcess> {
  const args = [join(root, 'bin', 'vqa-llm.js'), 'serve', '--port', '0', '--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'tiny-vle', '--llm', 'none', '--log-level', 'warn', ...extraArgs];
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += String(chunk)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      output += String(chunk);
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${output}`)));
  });
  // Listening comes before the models have loaded: wait until ready.
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then((response) => response.ok, () => false);
    if (ready) break;
    if (child.exitCode !== null) throw new Error(`serve exited: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    url,
    child,
    output: () => output,
    async metric(sample) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${sample} `));
      return line === undefined ? undefined : Number(line.slice(sample.length + 1));
    },
    async kill() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
  };
}
