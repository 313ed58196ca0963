// An upstream checkpoint folder + a shipped weight-less graph template -> a complete model folder, with Node alone.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openCheckpoint } from '../checkpoints/index.js';
import { ConversionError } from '../errors/conversion-error.js';
import { ByteProgress } from '../models/byte-progress.js';
import type { ManifestFile, ManifestGraph, ModelManifest } from '../models/manifest.js';
import type { ProgressCallback } from '../types.js';
import { chooseTemplate } from './choose-template.js';
import { familyOf } from './families.js';
import { readOptionalJson, writeJsonFile } from './json-files.js';
import { listTemplates } from './template-store.js';
import { planWeights } from './weight-plan.js';
import { writeGraphData } from './write-graph-data.js';
import { CONVERTER_NAME, converterVersion, writeManifest } from './write-manifest.js';

export interface ConvertCheckpointOptions {
  /** The upstream checkpoint folder: config.json, model.safetensors or pytorch_model.bin (or shards), tokenizer files. */
  checkpoint: string;
  /** The model folder to create. It appears complete or not at all: the work happens in a sibling folder renamed at the end. */
  out: string;
  /** Template folders searched before the package's own templates/ (each a template, or a folder of templates). */
  templates?: string | string[];
  /** The manifest's model name. Default: the last part of `source.checkpoint`, else of `checkpoint`. */
  name?: string;
  /** What the manifest records as the source. Default: `{ checkpoint, revision: 'local' }`. */
  source?: { checkpoint: string; revision?: string };
  /** Replace an existing `out` (default false: an existing folder is an `output_exists` error). */
  overwrite?: boolean;
  /** `start`/`progress`/`done` per data file and one `ready`; `progress` counts tensor bytes written, up to 100. */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

const exists = (target: string) => stat(target).then(() => true, () => false);

// onnx-proto (protobufjs) loads with the first graph to patch, not with every import of the library; one promise,
// so that conversions running at once share one import.
let graphPatcher: Promise<typeof import('./patch-graph.js')> | undefined;
const loadGraphPatcher = () => (graphPatcher ??= import('./patch-graph.js'));

/**
 * Converts an upstream BLIP (`Salesforce/blip-image-captioning-*`) or VLE (`hfl/vle-*-for-vqa`) checkpoint folder into
 * a model folder the runtime loads: the exporter's graphs (from the template whose structure matches the checkpoint's
 * config) with the checkpoint's weights as external data, config.json, preprocessor_config.json,
 * generation_config.json (BLIP), the tokenizer files and vqa-llm.json. Nothing runs Python; nothing in the checkpoint
 * is executed. Returns the manifest written.
 *
 * @throws ConversionError `no_template` (naming each differing config path, both values and the Python export
 * command), `missing_key`, `unexpected_key`, `shape_mismatch`, `dtype_mismatch`, `bad_config`, `missing_file`,
 * `unsupported_model`, `bad_template`, `output_exists`; CheckpointError for damaged weight files; the signal's reason
 * when aborted. On any failure nothing is left at `out`.
 * @example
 * const manifest = await convertCheckpoint({
 *   checkpoint: 'downloads/blip-image-captioning-base',
 *   out: 'models/blip-image-captioning-base',
 *   source: { checkpoint: 'Salesforce/blip-image-captioning-base', revision: 'main' },
 *   onProgress: (event) => event.status === 'progress' && console.log(event.progress),
 * });
 * manifest.graphs.textDecoder.file; // 'onnx/text_decoder.onnx'
 */
export async function convertCheckpoint(options: ConvertCheckpointOptions): Promise<ModelManifest> {
  const { signal } = options;
  signal?.throwIfAborted();
  const checkpointDir = path.resolve(options.checkpoint);
  const out = path.resolve(options.out);
  if (!(await stat(checkpointDir).then((stats) => stats.isDirectory(), () => false))) {
    throw new ConversionError('missing_file', `No checkpoint folder at ${checkpointDir}.`, { file: checkpointDir });
  }
  const configFile = path.join(checkpointDir, 'config.json');
  const raw = await readOptionalJson(configFile);
  if (!raw) throw new ConversionError('missing_file', `${checkpointDir} has no config.json.`, { file: configFile });
  const family = familyOf(raw, configFile);
  if (!options.overwrite && (await exists(out))) {
    throw new ConversionError('output_exists', `${out} exists already.`, { file: out, hint: 'Remove it, choose another folder, or pass overwrite: true.' });
  }
  const extraTemplates = options.templates === undefined ? [] : Array.isArray(options.templates) ? options.templates : [options.templates];
  const templates = await listTemplates({ folders: extraTemplates });
  const source = options.source ?? { checkpoint: options.checkpoint, revision: 'local' };
  const name = options.name ?? path.basename(source.checkpoint.replace(/[\\/]+$/, ''));

  const checkpoint = await openCheckpoint(checkpointDir);
  let staging: string | undefined;
  try {
    const { template, config } = chooseTemplate({
      family,
      templates,
      raw,
      shapeOf: (key) => (checkpoint.has(key) ? checkpoint.info(key).shape : undefined),
      configFile,
      checkpoint: source.checkpoint,
      out: options.out,
    });
    const plan = planWeights({ template, checkpoint, config, configFile });
    signal?.throwIfAborted();

    await mkdir(path.dirname(out), { recursive: true });
    staging = path.join(path.dirname(out), `.${path.basename(out)}.converting-${randomBytes(4).toString('hex')}`);
    await mkdir(path.join(staging, 'onnx'), { recursive: true });
    await writeJsonFile(path.join(staging, 'config.json'), config);
    for (const [file, value] of Object.entries(await family.folderFiles({ config, checkpointDir }))) {
      await writeJsonFile(path.join(staging, file), value);
    }
    await family.writeTokenizer(checkpointDir, staging);

    const { patchGraph } = await loadGraphPatcher();
    const progress = new ByteProgress(`convert:${name}`, plan.tensorBytes, options.onProgress);
    const known = new Map<string, ManifestFile>();
    const graphs: Record<string, ManifestGraph> = {};
    for (const graphPlan of plan.graphs) {
      signal?.throwIfAborted();
      const templateFile = path.join(template.folder, graphPlan.graph.file);
      const graph = patchGraph({ template: await readFile(templateFile), plan: graphPlan, templateFile });
      await writeFile(path.join(staging, 'onnx', graphPlan.graph.file), graph, { flag: 'wx' });
      if (graphPlan.tensors.length > 0) {
        const dataFile = `onnx/${graphPlan.dataFile}`;
        progress.startFile(dataFile, graphPlan.tensors.reduce((sum, item) => sum + item.length, 0));
        const written = await writeGraphData({
          checkpoint,
          plan: graphPlan,
          file: path.join(staging, 'onnx', graphPlan.dataFile),
          onBytes: (bytes) => progress.add(bytes),
          signal,
        });
        known.set(dataFile, written);
        progress.doneFile(dataFile);
      }
      graphs[graphPlan.graphName] = { file: `onnx/${graphPlan.graph.file}`, inputs: graphPlan.inputs, outputs: graphPlan.outputs };
    }

    // The template records the Python stack that made its graphs; the converter names itself first.
    const { opset, name: _name, version: _version, ...templateExporter } = template.exporter;
    const manifest = await writeManifest({
      folder: staging,
      kind: template.kind,
      name,
      source,
      exporter: { name: CONVERTER_NAME, version: await converterVersion(), template: template.id, ...templateExporter },
      opset,
      graphs,
      known,
      signal,
    });
    signal?.throwIfAborted();
    await moveIntoPlace(staging, out, Boolean(options.overwrite));
    staging = undefined;
    progress.ready();
    return manifest;
  } finally {
    await checkpoint.close();
    if (staging !== undefined) await rm(staging, { recursive: true, force: true });
  }
}

/** Renames the finished folder to `out`; an existing `out` (overwrite) is moved aside first, then removed. */
async function moveIntoPlace(staging: string, out: string, overwrite: boolean): Promise<void> {
  if (!overwrite || !(await exists(out))) {
    await rename(staging, out).catch((error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' || code === 'ENOTEMPTY') throw new ConversionError('output_exists', `${out} appeared while converting.`, { file: out, cause: error });
      throw error;
    });
    return;
  }
  const aside = `${staging}.old`;
  await rename(out, aside);
  try {
    await rename(staging, out);
  } catch (error) {
    await rename(aside, out).catch(() => undefined);
    throw error;
  }
  await rm(aside, { recursive: true, force: true });
}
