import { ConversionError } from '../errors/conversion-error.js';
import { isRecord } from '../models/manifest.js';
import { TEMPLATE_FILE } from './template-store.js';
import type { ModelTemplate } from './template-types.js';

/**
 * One of the exporter's completion tables from template.defaults, under the first of `names` present (the section
 * name, e.g. `text`, or the Python constant's, e.g. `TEXT_DEFAULTS`).
 *
 * @throws ConversionError `bad_template` when none is there.
 */
export function defaultsTable(template: ModelTemplate, names: readonly string[]): Record<string, unknown> {
  for (const name of names) {
    const table = template.defaults[name];
    if (isRecord(table)) return table;
  }
  const file = `${template.folder}/${TEMPLATE_FILE}`;
  throw new ConversionError('bad_template', `${file}: defaults has no ${names.map((name) => JSON.stringify(name)).join(' or ')} table.`, { file });
}

/** A deep copy of JSON data (configs are plain JSON). */
export const copyJson = <T>(value: T): T => structuredClone(value);
