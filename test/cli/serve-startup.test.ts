import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelsDir, root } from '../helpers/fixtures.js';

describe('vqa-llm serve start-up', () => {
  it('should exit non-zero, naming the model, when a model cannot load', async () => {
    const child = spawn(
      process.execPath,
      [join(root, 'bin', 'vqa-llm.js'), 'serve', '--port', '0', '--models', modelsDir, '--caption-model', 'tiny-blip', '--vqa-model', 'no-such-vqa', '--llm', 'none', '--log-level', 'silent'],
      { cwd: root, env: { ...process.env, VQA_LLM_OFFLINE: '1' } },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // A hang would fail through the test timeout; the process must end on its own.
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('no-such-vqa');
    expect(stderr).toMatch(/error: /);
  });
});
