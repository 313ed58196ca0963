import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Command } from 'commander';
import { InvalidOptionError } from '../../errors/invalid-option-error.js';
import { VqaLlmError } from '../../errors/vqa-llm-error.js';
import { DEFAULT_CAPTION_MODEL, DEFAULT_LOCAL_LLM, DEFAULT_VQA_MODEL, defaultModelsDir } from '../../models/defaults.js';
import { packageRoot } from '../../paths.js';
import { checkPython, defaultPython, exporterModules } from '../python-check.js';
import { createProgressReporter, printError, printJson } from '../shared.js';

interface ModelsOptions {
  models?: string;
  json?: boolean;
}

export function register(program: Command): void {
  const models = program.command('models').description('fetch, convert, export, list and verify model folders');

  models
    .command('export')
    .description('export a Hugging Face checkpoint (BLIP or VLE) into a model folder with the Python exporter')
    .argument('<checkpoint>', 'hub id (e.g. Salesforce/blip-image-captioning-base, hfl/vle-base-for-vqa) or a local checkpoint folder')
    .option('--family <family>', 'blip or vle (default: guessed from the checkpoint name)')
    .option('--out <dir>', 'output folder (default: <models dir>/<checkpoint name>)')
    .option('--models <dir>', 'folder holding model folders (default: VQA_LLM_MODELS or the per-user data folder)')
    .option('--revision <rev>', 'checkpoint revision')
    .option('--int8', 'also write dynamically quantized int8 graphs')
    .option('--python <path>', 'Python with models/requirements.txt installed (VQA_LLM_PYTHON, else the checkout\'s .venv/, else python3)', defaultPython())
    .action(async (checkpoint: string, options: ModelsOptions & { family?: string; out?: string; revision?: string; int8?: boolean; python: string }) => {
      const family = options.family ?? guessFamily(checkpoint);
      if (family !== 'blip' && family !== 'vle') throw new InvalidOptionError('invalid_value', `--family must be blip or vle, got "${family}".`);
      // Before shelling out: a missing torch should cost one line, not a Python traceback minutes into a download.
      await checkPython(options.python, exporterModules({ family, int8: options.int8, fromHub: !existsSync(checkpoint) }));
      const name = checkpoint.replace(/[\\/]+$/, '').split(/[\\/]/).pop()!;
      const out = resolve(options.out ?? join(options.models ?? defaultModelsDir(), name));
      const args = [join(packageRoot(), 'models', 'export.py'), family, '--checkpoint', checkpoint, '--out', out];
      if (options.revision) args.push('--revision', options.revision);
      if (options.int8) args.push('--int8');
      const code = await new Promise<number>((resolveExit, reject) => {
        const child = spawn(options.python, args, { stdio: 'inherit' });
        child.on('error', (error) =>
          reject(new VqaLlmError('exporter_failed', `Could not start ${options.python}: ${error.message}.`, { hint: 'Install Python 3 and `pip install -r models/requirements.txt`, or pass --python.' })),
        );
        child.on('exit', (exitCode) => resolveExit(exitCode ?? 1));
      });
      if (code !== 0) throw new VqaLlmError('exporter_failed', `The exporter exited with code ${code}.`);
      process.stderr.write(`Exported ${checkpoint} to ${out}\n`);
    });

  models
    .command('fetch')
    .description(
      'download models into the cache: an upstream checkpoint (Salesforce/blip-image-captioning-base or -large, hfl/vle-base-for-vqa or -large-for-vqa, or a fine-tune of one) converted here with Node alone, a published vqa-llm folder (hub id or https URL), or a GGUF file for the embedded LLM (owner/repo[/FILE.gguf]); with no source, the default caption, VQA and local LLM models',
    )
    .argument('[source]', 'hub repository id owner/name[@revision], owner/repo/FILE.gguf, or the URL of a folder holding vqa-llm.json')
    .option('--keep-checkpoint', 'keep the downloaded upstream checkpoint in the cache after converting it')
    .option('--models <dir>', 'folder holding model folders (default: VQA_LLM_MODELS or the per-user data folder)')
    .option('--offline', 'never download: only say where cached models are (also VQA_LLM_OFFLINE=1)')
    .action(async (source: string | undefined, options: ModelsOptions & { keepCheckpoint?: boolean; offline?: boolean }) => {
      const onProgress = createProgressReporter();
      const offline = options.offline || undefined;
      const { fetchLocalModel } = await import('../../llm/local/fetch-local-model.js');
      const { resolveModel } = await import('../../models/resolve-model.js');
      const fetchOne = (spec: string) =>
        isGgufSpec(spec)
          ? fetchLocalModel({ model: spec, modelsDir: options.models, offline, onProgress })
          : resolveModel(spec, { modelsDir: options.models, offline, onProgress, keepCheckpoint: options.keepCheckpoint });
      if (source !== undefined) {
        process.stdout.write(`${await fetchOne(source)}\n`);
        return;
      }
      // The defaults one after the other (one progress bar at a time); one failing does not stop the others.
      const failures: string[] = [];
      for (const spec of [DEFAULT_CAPTION_MODEL, DEFAULT_VQA_MODEL, `${DEFAULT_LOCAL_LLM.repo}/${DEFAULT_LOCAL_LLM.file}`]) {
        try {
          process.stdout.write(`${await fetchOne(spec)}\n`);
        } catch (error) {
          printError(error);
          failures.push(spec);
        }
      }
      if (failures.length > 0) throw new VqaLlmError('fetch_failed', `Could not fetch ${failures.join(', ')} (the reasons are above).`);
    });

  models
    .command('convert')
    .description('convert an upstream BLIP or VLE checkpoint folder on disk into a model folder, with Node alone (no Python)')
    .argument('<checkpoint>', 'folder with config.json, model.safetensors or pytorch_model.bin (or shards) and the tokenizer files')
    .option('--out <dir>', 'output folder (default: <models dir>/<checkpoint folder name>)')
    .option('--models <dir>', 'folder holding model folders (default: VQA_LLM_MODELS or the per-user data folder)')
    .option('--templates <dir>', 'extra graph templates, searched before the shipped ones (made by `python models/export.py template`)')
    .option('--overwrite', 'replace an existing output folder')
    .action(async (checkpoint: string, options: ModelsOptions & { out?: string; templates?: string; overwrite?: boolean }) => {
      const name = checkpoint.replace(/[\\/]+$/, '').split(/[\\/]/).pop()!;
      const out = resolve(options.out ?? join(options.models ?? defaultModelsDir(), name));
      const { convertCheckpoint } = await import('../../convert/convert-checkpoint.js');
      const manifest = await convertCheckpoint({
        checkpoint,
        out,
        templates: options.templates,
        overwrite: options.overwrite,
        onProgress: createProgressReporter(),
      });
      process.stderr.write(`Converted ${checkpoint} (${manifest.kind}) to ${out}\n`);
      process.stdout.write(`${out}\n`);
    });

  models
    .command('list')
    .description('list the model folders under the models folder')
    .option('--models <dir>', 'folder holding model folders (default: VQA_LLM_MODELS or the per-user data folder)')
    .option('--json', 'print JSON')
    .action(async (options: ModelsOptions) => {
      const root = resolve(options.models ?? defaultModelsDir());
      const { checkModelFolder, readManifest } = await import('../../models/manifest.js');
      const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
      const rows = [];
      for (const entry of entries.filter((item) => item.isDirectory()).sort((left, right) => left.name.localeCompare(right.name))) {
        const folder = join(root, entry.name);
        try {
          const manifest = await readManifest(folder);
          const bytes = Object.values(manifest.files).reduce((sum, file) => sum + file.bytes, 0);
          const status = await checkModelFolder(folder).then(
            () => 'ok',
            (error: Error) => `broken: ${error.message}`,
          );
          rows.push({ folder: entry.name, kind: manifest.kind, source: manifest.source?.checkpoint ?? '', bytes, status });
        } catch {
          // Folders without a manifest are not model folders: not listed.
        }
      }
      if (options.json) return printJson({ modelsDir: root, models: rows });
      if (rows.length === 0) {
        process.stdout.write(`No model folders in ${root}. Export one with \`vqa-llm models export\` or set --models / VQA_LLM_MODELS.\n`);
        return;
      }
      for (const row of rows) process.stdout.write(`${row.folder}\t${row.kind}\t${(row.bytes / 1e6).toFixed(1)} MB\t${row.source}\t${row.status}\n`);
    });

  models
    .command('verify')
    .description('re-check every file against its sha256 and run one inference')
    .argument('<models...>', 'folder names under --models, or paths')
    .option('--models <dir>', 'folder holding model folders (default: VQA_LLM_MODELS or the per-user data folder)')
    .option('--json', 'print JSON')
    .action(async (specs: string[], options: ModelsOptions) => {
      const { checkModelFolder } = await import('../../models/manifest.js');
      const { resolveModel } = await import('../../models/resolve-model.js');
      const results = [];
      for (const spec of specs) {
        const folder = await resolveModel(spec, { modelsDir: options.models, offline: true });
        const manifest = await checkModelFolder(folder, { verifyChecksums: true, onProgress: createProgressReporter() });
        const started = performance.now();
        const inference = await runOneInference(folder, manifest.kind);
        results.push({ model: spec, folder, kind: manifest.kind, files: Object.keys(manifest.files).length, checksums: 'ok', inference, inferenceMs: Math.round(performance.now() - started) });
      }
      if (options.json) printJson({ verified: results });
      else for (const result of results) process.stdout.write(`${result.model}: ${result.files} files ok, inference ok (${result.inference}) in ${result.inferenceMs} ms\n`);
    });
}

/** A GGUF file or a repository of them (the hub's convention is a name ending in -GGUF), for the embedded LLM. */
function isGgufSpec(spec: string): boolean {
  const withoutRevision = spec.replace(/@[^/]*$/, '');
  return /\.gguf$/i.test(withoutRevision) || /^[\w.-]+\/[\w.-]*gguf[\w.-]*$/i.test(withoutRevision);
}

function guessFamily(checkpoint: string): 'blip' | 'vle' {
  const lower = checkpoint.toLowerCase();
  if (lower.includes('blip')) return 'blip';
  if (lower.includes('vle')) return 'vle';
  throw new InvalidOptionError('invalid_value', `Cannot tell the model family of "${checkpoint}".`, { hint: 'Pass --family blip or --family vle.' });
}

/** One real inference on a synthetic image: proves the graphs load and run, not only that the bytes are intact. */
async function runOneInference(folder: string, kind: string): Promise<string> {
  const { default: sharp } = await import('sharp');
  const image = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 80, b: 40 } } }).png().toBuffer();
  if (kind === 'blip-captioner') {
    const { BlipCaptioner } = await import('../../runtime/blip-captioner.js');
    const captioner = await BlipCaptioner.load(folder, { workers: 0 });
    try {
      return JSON.stringify((await captioner.caption(image, { maxNewTokens: 5 })).caption);
    } finally {
      await captioner.dispose();
    }
  }
  const { VleVqa } = await import('../../runtime/vle-vqa.js');
  const vqa = await VleVqa.load(folder, { workers: 0 });
  try {
    const { candidates } = await vqa.candidates(image, 'What color is it?', { topK: 1 });
    return JSON.stringify(candidates[0]!.answer);
  } finally {
    await vqa.dispose();
  }
}
