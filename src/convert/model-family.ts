// What differs between BLIP and VLE when a checkpoint becomes a model folder: how the config is completed, which
// JSON files go beside the graphs, and how the tokenizer is written.
import type { ModelKind } from '../models/manifest.js';
import type { ModelTemplate } from './template-types.js';

export interface CompleteConfigOptions {
  /** config.json of the checkpoint, as read. */
  raw: Record<string, unknown>;
  template: ModelTemplate;
  /** A tensor's shape in the checkpoint, or undefined when it holds no such key. */
  shapeOf: (key: string) => readonly number[] | undefined;
  /** config.json's path, for error messages. */
  configFile: string;
}

export interface FolderFilesOptions {
  /** The completed config (what config.json gets). */
  config: Record<string, unknown>;
  checkpointDir: string;
}

export interface ModelFamily {
  kind: ModelKind;
  /** The `models/export.py` subcommand that exports this family with Python. */
  exportCommand: 'blip' | 'vle';
  /** config.json's content as the Python exporter writes it, defaults from the template's tables. */
  completeConfig(options: CompleteConfigOptions): Record<string, unknown>;
  /** The JSON files other than config.json and the tokenizer's (file name -> content). */
  folderFiles(options: FolderFilesOptions): Promise<Record<string, unknown>>;
  /** Writes the tokenizer files into outDir; returns their names. */
  writeTokenizer(checkpointDir: string, outDir: string): Promise<string[]>;
}
