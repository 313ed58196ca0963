import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { InvalidOptionError } from '../../dist/src/errors/invalid-option-error.js';
import { ModelIntegrityError } from '../../dist/src/errors/model-integrity-error.js';
import { ModelNotFoundError } from '../../dist/src/errors/model-not-found-error.js';
import { defaultCacheDir, defaultModelsDir, isOfflineByEnv } from '../../dist/src/models/defaults.js';
import { checkModelFolder, readManifest, readModelJson, readModelJsonFiles } from '../../dist/src/models/manifest.js';
import { parseModelSpec, resolveModel } from '../../dist/src/models/resolve-model.js';
import type { ProgressEvent } from '../../dist/src/types.js';

/** A small model folder with a manifest listing the real sha256 and size of each file. */
async function makeModelFolder(parent: string, name = 'tiny-test', options: { kind?: string } = {}): Promise<string> {
  const folder = path.join(parent, name);
  const files: Record<string, string | Buffer> = {
    'config.json': JSON.stringify({ model_type: 'blip', id2label: { 0: 'yes', 1: 'no' } }),
    'preprocessor_config.json': JSON.stringify({ do_resize: true, size: { height: 8, width: 8 }, resample: 3 }),
    'generation_config.json': JSON.stringify({ bos_token_id: 30522, eos_token_id: 102, pad_token_id: 0 }),
    'tokenizer_config.json': JSON.stringify({ tokenizer_class: 'BertTokenizer' }),
    'onnx/vision_encoder.onnx': Buffer.from('not really onnx, but bytes all the same'),
  };
  const entries: Record<string, { sha256: string; bytes: number }> = {};
  for (const [file, content] of Object.entries(files)) {
    const target = path.join(folder, ...file.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, content);
    const bytes = Buffer.from(content);
    entries[file] = { sha256: createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length };
  }
  const manifest = {
    format: 'vqa-llm-model',
    formatVersion: 1,
    kind: options.kind ?? 'blip-captioner',
    name,
    source: { checkpoint: 'test/dummy', revision: 'random-init' },
    opset: 14,
    graphs: {
      visionEncoder: {
        file: 'onnx/vision_encoder.onnx',
        inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 8, 8] }],
        outputs: [{ name: 'image_embeds', dtype: 'float32', shape: ['batch', 5, 4] }],
      },
    },
    files: entries,
  };
  await writeFile(path.join(folder, 'vqa-llm.json'), JSON.stringify(manifest, null, 2));
  return folder;
}

async function editManifest(folder: string, edit: (manifest: Record<string, any>) => void): Promise<void> {
  const manifest = JSON.parse(await readFile(path.join(folder, 'vqa-llm.json'), 'utf8'));
  edit(manifest);
  await writeFile(path.join(folder, 'vqa-llm.json'), JSON.stringify(manifest));
}

async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('resolveModel (local folders)', () => {
  let root: string;
  let modelsDir: string;
  let folder: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vqa-llm-resolve-'));
    modelsDir = path.join(root, 'models');
    folder = await makeModelFolder(modelsDir);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('should resolve an absolute path to the folder', async () => {
    await expect(resolveModel(folder, { offline: true })).resolves.toBe(folder);
  });

  it('should resolve a relative path against the working directory', async () => {
    const relative = path.relative(process.cwd(), folder);
    const spec = relative.startsWith('..') ? relative : `./${relative}`;
    await expect(resolveModel(spec, { offline: true })).resolves.toBe(folder);
  });

  it('should resolve a bare name inside modelsDir', async () => {
    await expect(resolveModel('tiny-test', { modelsDir, offline: true })).resolves.toBe(folder);
  });

  it('should name the path and the settings when a named folder is missing', async () => {
    const error = await rejection(resolveModel('blip-image-captioning-base', { modelsDir }));
    expect(ModelNotFoundError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('missing_folder');
    expect(error.message).toContain(path.join(modelsDir, 'blip-image-captioning-base'));
    expect(error.message).toContain('--models DIR');
    expect(error.message).toContain('VQA_LLM_MODELS');
    expect(error.message).toContain('--caption-model');
    expect(error.message).toContain('--vqa-model');
  });

  it('should name the path when a folder path is missing', async () => {
    const missing = path.join(root, 'nowhere');
    const error = await rejection(resolveModel(missing));
    expect(error.reason).toBe('missing_folder');
    expect(error.message).toContain(missing);
  });

  it('should name a missing file and how to re-create it', async () => {
    await rm(path.join(folder, 'onnx', 'vision_encoder.onnx'));
    const error = await rejection(resolveModel(folder));
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('missing_file');
    expect(error.message).toContain('onnx/vision_encoder.onnx');
    expect(error.message).toContain('npm run models:test');
  });

  it('should tell real models to be exported again', async () => {
    await editManifest(folder, (manifest) => (manifest.source = { checkpoint: 'Salesforce/blip-image-captioning-base', revision: 'abc' }));
    const renamed = path.join(root, 'blip-image-captioning-base');
    await rename(folder, renamed);
    await rm(path.join(renamed, 'config.json'));
    const error = await rejection(resolveModel(renamed));
    expect(error.reason).toBe('missing_file');
    expect(error.message).toContain('vqa-llm models export Salesforce/blip-image-captioning-base');
  });

  it('should report a file whose size differs from the manifest', async () => {
    await writeFile(path.join(folder, 'config.json'), '{}');
    const error = await rejection(resolveModel(folder));
    expect(error.reason).toBe('size_mismatch');
    expect(error.message).toContain('config.json');
  });

  it('should refuse a folder of the wrong kind', async () => {
    const error = await rejection(resolveModel(folder, { kind: 'vle-vqa' }));
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('wrong_kind');
    expect(error.message).toContain('blip-captioner');
  });

  it('should refuse an empty spec with an option error', async () => {
    const error = await rejection(resolveModel('  '));
    expect(InvalidOptionError.isInstance(error)).toBe(true);
  });
});

describe('checkModelFolder', () => {
  let root: string;
  let folder: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vqa-llm-check-'));
    folder = await makeModelFolder(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('should return the manifest of a complete folder', async () => {
    const manifest = await checkModelFolder(folder, { kind: 'blip-captioner', verifyChecksums: true });
    expect(manifest.kind).toBe('blip-captioner');
    expect(manifest.graphs.visionEncoder.inputs[0].name).toBe('pixel_values');
  });

  it('should report a checksum mismatch naming the file', async () => {
    // Same size, different bytes: only the checksum can tell.
    await writeFile(path.join(folder, 'onnx', 'vision_encoder.onnx'), Buffer.from('NOT really onnx, but bytes all the same'));
    await expect(checkModelFolder(folder)).resolves.toBeDefined();
    const error = await rejection(checkModelFolder(folder, { verifyChecksums: true }));
    expect(error.reason).toBe('checksum_mismatch');
    expect(error.message).toContain('onnx/vision_encoder.onnx');
  });

  it('should report verification progress that never goes backwards and ends at 100', async () => {
    const events: ProgressEvent[] = [];
    await checkModelFolder(folder, { verifyChecksums: true, onProgress: (event) => events.push(event) });
    const percents = events.flatMap((event) => (event.status === 'progress' ? [event.progress!] : []));
    expect(percents.length).toBeGreaterThan(0);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(percents.at(-1)).toBe(100);
    expect(events.at(-1)).toEqual({ status: 'ready', task: 'verify:tiny-test' });
    expect(events.filter((event) => event.status === 'done')).toHaveLength(5);
  });

  it('should report bad manifest JSON', async () => {
    await writeFile(path.join(folder, 'vqa-llm.json'), '{ "format": ');
    const error = await rejection(checkModelFolder(folder));
    expect(error.reason).toBe('bad_manifest');
    expect(error.message).toContain('vqa-llm.json');
  });

  it('should name the offending field of a malformed manifest', async () => {
    await editManifest(folder, (manifest) => (manifest.graphs.visionEncoder.inputs[0].shape = ['batch', -3]));
    const error = await rejection(checkModelFolder(folder));
    expect(error.reason).toBe('bad_manifest');
    expect(error.message).toContain('graphs.visionEncoder.inputs[0].shape');
  });

  it('should refuse other format versions and kinds', async () => {
    await editManifest(folder, (manifest) => (manifest.formatVersion = 2));
    expect((await rejection(checkModelFolder(folder))).message).toContain('formatVersion');
    await editManifest(folder, (manifest) => {
      manifest.formatVersion = 1;
      manifest.kind = 'gpt';
    });
    expect((await rejection(checkModelFolder(folder))).message).toContain('kind');
  });

  it('should refuse file paths that leave the folder', async () => {
    await editManifest(folder, (manifest) => (manifest.files['../outside'] = { sha256: '0'.repeat(64), bytes: 1 }));
    const error = await rejection(checkModelFolder(folder));
    expect(error.reason).toBe('bad_manifest');
    expect(error.message).toContain('../outside');
  });

  it('should refuse a graph whose file is not listed', async () => {
    await editManifest(folder, (manifest) => (manifest.graphs.visionEncoder.file = 'onnx/other.onnx'));
    expect((await rejection(checkModelFolder(folder))).message).toContain('graphs.visionEncoder.file');
  });

  it('should report a folder without a manifest as a missing file', async () => {
    await rm(path.join(folder, 'vqa-llm.json'));
    const error = await rejection(readManifest(folder));
    expect(error.reason).toBe('missing_file');
    expect(error.message).toContain('vqa-llm.json');
  });
});

describe('readModelJson', () => {
  let root: string;
  let folder: string;

  beforeEach(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'vqa-llm-json-'));
    folder = await makeModelFolder(root);
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('should read the config files as written', async () => {
    const manifest = await readManifest(folder);
    const files = await readModelJsonFiles(folder, manifest);
    expect(files.config.id2label).toEqual({ 0: 'yes', 1: 'no' });
    expect(files.generationConfig?.bos_token_id).toBe(30522);
    expect(files.specialTokensMap).toBeUndefined();
  });

  it('should name the file that is not valid JSON', async () => {
    await writeFile(path.join(folder, 'config.json'), '{ oops }');
    const error = await rejection(readModelJson(folder, 'config.json'));
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect(error.message).toContain(path.join(folder, 'config.json'));
  });

  it('should name a missing file', async () => {
    const error = await rejection(readModelJson(folder, 'special_tokens_map.json'));
    expect(error.reason).toBe('missing_file');
    expect(error.message).toContain('special_tokens_map.json');
  });
});

describe('parseModelSpec', () => {
  it('should tell names, paths, hub ids and URLs apart', async () => {
    expect(await parseModelSpec('vle-base-for-vqa')).toEqual({ type: 'name', name: 'vle-base-for-vqa' });
    expect(await parseModelSpec('/abs/folder')).toEqual({ type: 'path', folder: path.resolve('/abs/folder') });
    expect(await parseModelSpec('./rel')).toEqual({ type: 'path', folder: path.resolve('rel') });
    expect(await parseModelSpec('hfl/vle-onnx')).toEqual({ type: 'hub', repo: 'hfl/vle-onnx' });
    expect(await parseModelSpec('hfl/vle-onnx@v1.0')).toEqual({ type: 'hub', repo: 'hfl/vle-onnx', revision: 'v1.0' });
    expect(await parseModelSpec('https://example.com/models/blip')).toEqual({ type: 'url', url: 'https://example.com/models/blip/' });
    expect(await parseModelSpec('https://example.com/m/vqa-llm.json')).toEqual({ type: 'url', url: 'https://example.com/m/' });
  });

  it('should prefer an existing relative folder over a hub id', async () => {
    // test/models exists in this repository, and looks like owner/name.
    expect(await parseModelSpec('test/models')).toEqual({ type: 'path', folder: path.resolve('test/models') });
  });

  it('should refuse unsupported URL schemes', async () => {
    const error = await rejection(parseModelSpec('s3://bucket/model'));
    expect(error.reason).toBe('unknown_source');
  });
});

describe('defaults', () => {
  it('should read the directories from the environment, then fall back to per-user folders', () => {
    expect(defaultModelsDir({ VQA_LLM_MODELS: '/srv/models' })).toBe(path.resolve('/srv/models'));
    expect(defaultModelsDir({ XDG_DATA_HOME: '/data' })).toBe(path.join(path.resolve('/data'), 'vqa-llm', 'models'));
    expect(defaultCacheDir({ VQA_LLM_CACHE: '/cache' })).toBe(path.resolve('/cache'));
    expect(defaultCacheDir({ XDG_CACHE_HOME: '/xdg' })).toBe(path.join(path.resolve('/xdg'), 'vqa-llm'));
    expect(isOfflineByEnv({ VQA_LLM_OFFLINE: '1' })).toBe(true);
    expect(isOfflineByEnv({ VQA_LLM_OFFLINE: '0' })).toBe(false);
    expect(isOfflineByEnv({})).toBe(false);
  });
});

/** The test models are made by `npm run models:test`; these run once they exist. */
describe.each([
  { name: 'tiny-blip', kind: 'blip-captioner' },
  { name: 'tiny-vle', kind: 'vle-vqa' },
])('resolveModel on test/fixtures/models/$name', ({ name, kind }) => {
  const modelsDir = path.resolve('test/fixtures/models');
  const present = existsSync(path.join(modelsDir, name, 'vqa-llm.json'));

  it.skipIf(!present)('should resolve by name and pass the checksum verification', async () => {
    const folder = await resolveModel(name, { modelsDir, kind: kind as 'blip-captioner' | 'vle-vqa', offline: true });
    expect(folder).toBe(path.join(modelsDir, name));
    const manifest = await checkModelFolder(folder, { verifyChecksums: true });
    expect(manifest.kind).toBe(kind);
    const files = await readModelJsonFiles(folder, manifest);
    expect(files.config).toBeTypeOf('object');
  });
});
