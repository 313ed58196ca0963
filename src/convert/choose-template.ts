// Picks the template whose structure is the checkpoint's: every structural config value equal once the checkpoint's
// config is completed with that template's defaults. Variable values (vocabulary, answer labels) may differ.
import { ConversionError, type ConfigDifference } from '../errors/conversion-error.js';
import { configValue, sameJson, showValue } from './config-path.js';
import type { ModelFamily } from './model-family.js';
import type { ModelTemplate } from './template-types.js';

export interface ChooseTemplateOptions {
  family: ModelFamily;
  templates: readonly ModelTemplate[];
  raw: Record<string, unknown>;
  shapeOf: (key: string) => readonly number[] | undefined;
  configFile: string;
  /** For the Python command in the error: what --checkpoint and --out would be. */
  checkpoint: string;
  out: string;
}

export interface ChosenTemplate {
  template: ModelTemplate;
  /** The checkpoint's completed config (config.json of the folder). */
  config: Record<string, unknown>;
}

/**
 * `python models/export.py blip|vle --checkpoint ... --out ...`, quoted for a POSIX shell where needed: what a
 * checkpoint no template fits is exported with instead.
 *
 * @example
 * pythonExportCommand(blipFamily, 'Salesforce/blip-image-captioning-large', 'models/blip-large');
 * // 'python models/export.py blip --checkpoint Salesforce/blip-image-captioning-large --out models/blip-large'
 */
export function pythonExportCommand(family: ModelFamily, checkpoint: string, out: string): string {
  const quote = (value: string) => (/^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", "'\\''")}'`);
  return `python models/export.py ${family.exportCommand} --checkpoint ${quote(checkpoint)} --out ${quote(out)}`;
}

/**
 * @throws ConversionError `no_template` naming every structural path where the closest template differs, both values,
 * and the Python command that exports the checkpoint instead.
 */
export function chooseTemplate(options: ChooseTemplateOptions): ChosenTemplate {
  const { family } = options;
  const candidates = options.templates.filter((template) => template.kind === family.kind);
  const command = pythonExportCommand(family, options.checkpoint, options.out);
  if (candidates.length === 0) {
    throw new ConversionError('no_template', `No ${family.kind} template is installed, so ${options.checkpoint} cannot be converted without Python.`, {
      file: options.configFile,
      hint: `Export it with the Python exporter: ${command}`,
    });
  }
  let closest: { template: ModelTemplate; differences: ConfigDifference[] } | undefined;
  for (const template of candidates) {
    const config = family.completeConfig({ raw: options.raw, template, shapeOf: options.shapeOf, configFile: options.configFile });
    const differences = template.structural
      .map((path) => ({ path, checkpoint: configValue(config, path), template: configValue(template.config, path) }))
      .filter((difference) => !sameJson(difference.checkpoint, difference.template));
    if (differences.length === 0) return { template, config };
    if (!closest || differences.length < closest.differences.length) closest = { template, differences };
  }
  const { template, differences } = closest!;
  const listed = differences.map((difference) => `${difference.path} is ${showValue(difference.checkpoint)} (template ${showValue(difference.template)})`).join('; ');
  const others = candidates.length > 1 ? ` (of ${candidates.length} ${family.kind} templates: ${candidates.map((candidate) => candidate.id).join(', ')})` : '';
  throw new ConversionError(
    'no_template',
    `No template has the structure of ${options.checkpoint}: the closest, ${template.id}${others}, differs where the graph depends on it: ${listed}.`,
    { file: options.configFile, path: differences[0]!.path, differences, hint: `Export it with the Python exporter: ${command}` },
  );
}
