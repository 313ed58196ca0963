import { join } from 'node:path';
import { ModelIntegrityError } from '../errors/model-integrity-error.js';
import { checkModelFolder, readModelJson, type ModelManifest } from '../models/manifest.js';
import { loadTokenizer, type Tokenizer } from '../models/tokenizer.js';
import { parsePreprocessorConfig } from '../image/preprocessor-config.js';
import type { PreprocessorConfig } from '../types.js';
import type { GraphSessionOptions } from './onnx-session.js';
import type { WorkerModelSpec } from './worker-protocol.js';

export interface LoadedModelFolder {
  folder: string;
  manifest: ModelManifest;
  config: Record<string, unknown>;
  preprocessor: PreprocessorConfig;
  tokenizer: Tokenizer;
  spec: WorkerModelSpec;
}

export interface ModelFolderOptions {
  session?: GraphSessionOptions;
  /** Use the `variants.int8` graphs where the folder has them. */
  quantized?: boolean;
  /** Recompute every file's sha256 before loading (slow for real models; `vqa-llm models verify` does it too). */
  verifyChecksums?: boolean;
  /** VLE: bytes of fusion image state each worker caches (see VisionModelOptions.fusionCacheBytes). */
  fusionCacheBytes?: number;
}

/** Reads a model folder's manifest, configs and tokenizer on the main thread; workers get only file paths. */
export async function loadModelFolder(folder: string, kind: WorkerModelSpec['kind'], options: ModelFolderOptions = {}): Promise<LoadedModelFolder> {
  const manifest = await checkModelFolder(folder, { kind, verifyChecksums: options.verifyChecksums ?? false });
  const [config, preprocessorJson, tokenizer] = await Promise.all([
    readModelJson(folder, 'config.json'),
    readModelJson(folder, 'preprocessor_config.json'),
    loadTokenizer(folder),
  ]);
  const preprocessor = parsePreprocessorConfig(preprocessorJson, join(folder, 'preprocessor_config.json'));
  const graphs: WorkerModelSpec['graphs'] = {};
  for (const [name, graph] of Object.entries(manifest.graphs)) {
    const file = options.quantized && graph.variants?.int8 ? graph.variants.int8 : graph.file;
    graphs[name] = { path: join(folder, file), inputs: graph.inputs, outputs: graph.outputs };
  }
  const session = options.session ?? {};
  const fusionCacheBytes = kind === 'vle-vqa' ? (options.fusionCacheBytes ?? 0) : 0;
  const spec: WorkerModelSpec = {
    // Every session setting is part of the key: a worker holding the same folder with other settings opens it anew.
    key: `${folder}|${options.quantized ? 'int8' : 'fp32'}|${JSON.stringify(session, Object.keys(session).sort())}|fusion-cache:${fusionCacheBytes}`,
    kind,
    graphs,
    session,
    preprocessor,
    ...(fusionCacheBytes > 0 ? { fusionCacheBytes } : {}),
  };
  return { folder, manifest, config, preprocessor, tokenizer, spec };
}

/** A required number in a config object; the exporter writes every value out, so absence is a broken folder. */
export function configNumber(config: Record<string, unknown>, key: string, source: string): number {
  const value = config[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new ModelIntegrityError('bad_manifest', `${source} has no numeric "${key}".`, { hint: 'Export the model folder again with `vqa-llm models export`.' });
  }
  return value;
}
