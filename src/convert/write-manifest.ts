// vqa-llm.json of a converted folder, in the format models/vqa_llm_export/manifest.py writes and src/models/manifest.ts
// checks: the graphs' specs, and the sha256 and size of every file (data files included).
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { MANIFEST_FILE } from '../models/defaults.js';
import { sha256File, type ManifestFile, type ManifestGraph, type ModelKind, type ModelManifest } from '../models/manifest.js';
import { packageRoot } from '../paths.js';
import { writeJsonFile } from './json-files.js';

/** The converter's name in manifests (the Python exporter writes `vqa-llm-export`). */
export const CONVERTER_NAME = 'vqa-llm-convert';

let version: Promise<string> | undefined;

/** This package's version, recorded as the converter's. */
export function converterVersion(): Promise<string> {
  version ??= readFile(path.join(packageRoot(), 'package.json'), 'utf8').then((text) => (JSON.parse(text) as { version: string }).version);
  return version;
}

async function listFiles(folder: string, prefix = ''): Promise<string[]> {
  const result: string[] = [];
  for (const entry of await readdir(path.join(folder, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) result.push(...(await listFiles(folder, relative)));
    else if (entry.isFile()) result.push(relative);
  }
  return result;
}

export interface WriteManifestOptions {
  folder: string;
  kind: ModelKind;
  name: string;
  source: { checkpoint: string; revision?: string };
  exporter: ModelManifest['exporter'];
  opset: number;
  graphs: Record<string, ManifestGraph>;
  /** Digests already known (files hashed while written), keyed by relative path. */
  known?: ReadonlyMap<string, ManifestFile>;
  signal?: AbortSignal;
}

/** Hashes every other file of the folder and writes vqa-llm.json; returns the manifest. */
export async function writeManifest(options: WriteManifestOptions): Promise<ModelManifest> {
  const files: Record<string, ManifestFile> = {};
  for (const relative of (await listFiles(options.folder)).sort()) {
    if (relative === MANIFEST_FILE) continue;
    options.signal?.throwIfAborted();
    const known = options.known?.get(relative);
    if (known) {
      files[relative] = known;
      continue;
    }
    const file = path.join(options.folder, ...relative.split('/'));
    let bytes = 0;
    const sha256 = await sha256File(file, { signal: options.signal, onBytes: (count) => (bytes += count) });
    files[relative] = { sha256, bytes };
  }
  const manifest: ModelManifest = {
    format: 'vqa-llm-model',
    formatVersion: 1,
    kind: options.kind,
    name: options.name,
    source: options.source,
    exporter: options.exporter,
    opset: options.opset,
    graphs: options.graphs,
    files,
  };
  await writeJsonFile(path.join(options.folder, MANIFEST_FILE), manifest);
  return manifest;
}
