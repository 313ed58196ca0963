// The exporter is Python (torch, transformers, onnx): before the CLI shells out to it, it checks that the
// interpreter starts and has the modules the export will import, and says in one line what to install.
import { execFile, type ExecFileException } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { VqaLlmError } from '../errors/vqa-llm-error.js';
import { packageRoot } from '../paths.js';

/** What an export imports (models/vqa_llm_export): import names, not pip names. */
export function exporterModules(options: { family: 'blip' | 'vle'; int8?: boolean; fromHub: boolean }): string[] {
  const modules = ['torch', 'numpy', 'onnx', 'safetensors'];
  if (options.family === 'vle') modules.push('transformers', 'tokenizers', 'sentencepiece');
  if (options.int8) modules.push('onnxruntime');
  if (options.fromHub) modules.push('huggingface_hub');
  return modules;
}

/**
 * The interpreter `models export` uses unless `--python` says otherwise: VQA_LLM_PYTHON, else the checkout's
 * `.venv/` (which `npm run fixtures:upstream` makes with models/requirements.txt), else `python3`.
 */
export function defaultPython(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VQA_LLM_PYTHON) return env.VQA_LLM_PYTHON;
  const venv = join(packageRoot(), '.venv', 'bin', 'python');
  return existsSync(venv) ? venv : 'python3';
}

// Relative where the user stands in the checkout, so that the command can be pasted as it is.
function requirementsPath(): string {
  const absolute = join(packageRoot(), 'models', 'requirements.txt');
  const fromHere = relative(process.cwd(), absolute);
  return fromHere.startsWith('..') ? absolute : fromHere;
}

function installHint(python: string, options: { pythonToo?: boolean } = {}): string {
  return (
    `${options.pythonToo ? 'Install Python 3.10-3.12, then' : 'Install'} the exporter's requirements with \`${python} -m pip install -r ${requirementsPath()}\`` +
    ' (or, in a checkout, `npm run fixtures:upstream`, which makes .venv/ with them; export then uses it), or pass --python.'
  );
}

// find_spec looks for a module without importing it: torch alone takes seconds to import.
const PROBE = [
  'import importlib.util, json, sys',
  "print(json.dumps({'version': list(sys.version_info[:2]), 'missing': [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]}))",
].join('\n');

/**
 * Checks that `python` runs as Python 3 and can import `modules`.
 *
 * @throws {VqaLlmError} `exporter_setup`, one line naming what is missing and the command that installs it.
 */
export async function checkPython(python: string, modules: readonly string[]): Promise<void> {
  const probe = await new Promise<{ stdout: string; error?: ExecFileException }>((resolve) => {
    execFile(python, ['-c', PROBE, ...modules], { timeout: 60_000 }, (error, stdout) => resolve({ stdout, ...(error ? { error } : {}) }));
  });
  if (probe.error?.code === 'ENOENT') {
    throw new VqaLlmError('exporter_setup', `The exporter runs in Python 3 with torch, and there is no ${python} on this machine.`, { hint: installHint('python3', { pythonToo: true }) });
  }
  let report: { version: number[]; missing: string[] } | undefined;
  try {
    report = JSON.parse(probe.stdout.trim().split('\n').at(-1) ?? '') as { version: number[]; missing: string[] };
  } catch {
    report = undefined;
  }
  if (probe.error || !report || report.version[0] !== 3) {
    throw new VqaLlmError('exporter_setup', `${python} did not run as Python 3${probe.error ? ` (${probe.error.message.split('\n')[0]})` : ''}.`, { hint: 'Pass --python with a Python 3.10-3.12 interpreter.' });
  }
  if (report.missing.length > 0) {
    throw new VqaLlmError('exporter_setup', `The exporter needs ${report.missing.join(', ')}, which ${python} cannot import.`, { hint: installHint(python) });
  }
}
