import { createHash } from 'node:crypto';
import { relative, sep } from 'node:path';
import type { LoadedModelFolder } from '../runtime/model-loader.js';

/**
 * A short digest naming exactly the model that made some image work: its kind, the sha256 of every file of its
 * folder (configs, preprocessor, tokenizer, graphs) and which graph files run (fp32 or int8). Replicas loading the
 * same export agree on it wherever the folder lives; a re-export, a fine-tune or `--int8` gets another.
 *
 * @example
 * modelIdentity(loaded); // 'blip-captioner-3f9c2a1b7d4e6f80'
 */
export function modelIdentity(model: Pick<LoadedModelFolder, 'folder' | 'manifest' | 'spec'>): string {
  const files = Object.entries(model.manifest.files)
    .map(([path, file]) => `${path}=${file.sha256}`)
    .sort();
  const graphs = Object.entries(model.spec.graphs)
    .map(([name, graph]) => `${name}:${relative(model.folder, graph.path).split(sep).join('/')}`)
    .sort();
  const digest = createHash('sha256').update(JSON.stringify({ kind: model.manifest.kind, files, graphs })).digest('hex');
  return `${model.manifest.kind}-${digest.slice(0, 16)}`;
}
