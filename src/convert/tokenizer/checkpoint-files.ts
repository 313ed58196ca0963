/** Reading and writing the small files of a tokenizer conversion, with typed errors that name the file. */
import { access, copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { ConversionError } from '../../errors/conversion-error.js';
import { formatPythonJson, parsePythonJson, type PythonJson } from './python-json.js';

export async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** A JSON file of the checkpoint, or undefined when there is none. */
export async function readJsonIfExists(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConversionError('missing_file', `${file} cannot be read: ${(error as Error).message}.`, { file, cause: error });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new ConversionError('bad_tokenizer', `${file} is not JSON: ${(error as Error).message}.`, { file, cause: error });
  }
}

/** A JSON file of the checkpoint read as Python's json.load reads it (see parsePythonJson). */
export async function readPythonJson(file: string): Promise<PythonJson> {
  const text = await readFile(file, 'utf8');
  try {
    return parsePythonJson(text);
  } catch (error) {
    throw new ConversionError('bad_tokenizer', `${file} is not JSON: ${(error as Error).message}.`, { file, cause: error });
  }
}

/** A JSON object file of the checkpoint (tokenizer_config.json, added_tokens.json), or undefined when there is none. */
export async function readJsonObjectIfExists(file: string): Promise<Record<string, unknown> | undefined> {
  const value = await readJsonIfExists(file);
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConversionError('bad_tokenizer', `${file} must hold a JSON object.`, { file });
  }
  return value as Record<string, unknown>;
}

/** Python's truth value of a JSON value (`bool(config.get(...))` in the exporter). */
export function pythonTruthy(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === '') return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

/** Writes `value` as the exporter's write_json does (creating the folder). */
export async function writePythonJson(folder: string, name: string, value: PythonJson): Promise<void> {
  await mkdir(folder, { recursive: true });
  await writeFile(path.join(folder, name), formatPythonJson(value), 'utf8');
}

export async function copyInto(from: string, folder: string, name: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  await copyFile(from, path.join(folder, name));
}
