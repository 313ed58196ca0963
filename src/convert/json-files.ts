// The JSON files a conversion reads from a checkpoint and writes into a model folder.
import { readFile, writeFile } from 'node:fs/promises';
import { ConversionError } from '../errors/conversion-error.js';
import { isNotFound, isRecord } from '../models/manifest.js';

/**
 * A JSON object file of the checkpoint, or undefined when there is none.
 *
 * @throws ConversionError `bad_config` when it is not a JSON object.
 */
export async function readOptionalJson(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ConversionError('bad_config', `${file} is not valid JSON: ${(error as Error).message}.`, { file, cause: error });
  }
  if (!isRecord(value)) throw new ConversionError('bad_config', `${file} must hold a JSON object.`, { file });
  return value;
}

/**
 * JSON laid out as the Python exporter lays it out (two-space indent, final newline). The values are the exporter's;
 * the text differs where Python keeps a float's fraction (`1.0`, `1e-05` here `1`, `0.00001`).
 */
export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, { flag: 'wx' });
}
