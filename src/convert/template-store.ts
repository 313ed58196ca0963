// Finds and reads the graph templates: the folders a caller names, then the ones shipped in the package's templates/.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ConversionError } from '../errors/conversion-error.js';
import { isRecord, MODEL_KINDS, type ModelKind } from '../models/manifest.js';
import { packageRoot } from '../paths.js';
import type { ConfigDim, ModelTemplate, TemplateGraph, TemplateTensor, TemplateTensorSpec } from './template-types.js';

export const TEMPLATE_FILE = 'template.json';
export const TEMPLATE_FORMAT = 'vqa-llm-template/1';

/**
 * The templates shipped with the package (`<package root>/templates`).
 *
 * @example
 * const folder = shippedTemplatesFolder(); // …/node_modules/vqa-llm/templates
 */
export function shippedTemplatesFolder(): string {
  return path.join(packageRoot(), 'templates');
}

const isDirectory = (folder: string) => stat(folder).then((stats) => stats.isDirectory(), () => false);
const isFile = (file: string) => stat(file).then((stats) => stats.isFile(), () => false);

/**
 * Every template under `options.folders` (each a template folder itself, or a folder of template folders), then the shipped
 * ones; a template id seen twice keeps its first folder, so a caller's folder overrides a shipped template.
 *
 * @throws ConversionError `bad_template` for a caller's folder that does not exist or a malformed template.json.
 * @example
 * const ids = (await listTemplates({ folders: ['my-templates'] })).map((template) => template.id);
 */
export async function listTemplates(options: { folders?: readonly string[] } = {}): Promise<ModelTemplate[]> {
  const folders = options.folders ?? [];
  const found: ModelTemplate[] = [];
  const seen = new Set<string>();
  const add = (template: ModelTemplate) => {
    if (seen.has(template.id)) return;
    seen.add(template.id);
    found.push(template);
  };
  for (const folder of folders) {
    const absolute = path.resolve(folder);
    if (!(await isDirectory(absolute))) {
      throw new ConversionError('bad_template', `The template folder ${absolute} does not exist.`, { file: absolute });
    }
    for (const templateFolder of await templateFolders(absolute)) add(await readTemplate(templateFolder));
  }
  const shipped = shippedTemplatesFolder();
  if (await isDirectory(shipped)) {
    for (const templateFolder of await templateFolders(shipped)) add(await readTemplate(templateFolder));
  }
  return found;
}

async function templateFolders(folder: string): Promise<string[]> {
  if (await isFile(path.join(folder, TEMPLATE_FILE))) return [folder];
  const entries = await readdir(folder, { withFileTypes: true });
  const folders = entries
    .filter((entry) => entry.isDirectory())
    .map((entry) => path.join(folder, entry.name))
    .sort();
  const result: string[] = [];
  for (const candidate of folders) if (await isFile(path.join(candidate, TEMPLATE_FILE))) result.push(candidate);
  return result;
}

/**
 * Reads and validates `<folder>/template.json` (and that its graph files exist).
 *
 * @throws ConversionError `bad_template`, naming the file and the field.
 * @example
 * const template = await readTemplate('templates/blip-image-captioning-base');
 * template.graphs.textDecoder.tensors.length;
 */
export async function readTemplate(folder: string): Promise<ModelTemplate> {
  const file = path.join(folder, TEMPLATE_FILE);
  const fail = (field: string, problem: string): never => {
    throw new ConversionError('bad_template', `${file}: ${field} ${problem}.`, { file });
  };
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new ConversionError('bad_template', `${file} cannot be read as JSON: ${(error as Error).message}.`, { file, cause: error });
  }
  if (!isRecord(value)) return fail('the template', 'must be a JSON object');
  if (value.format !== TEMPLATE_FORMAT) fail('format', `must be ${JSON.stringify(TEMPLATE_FORMAT)}, not ${JSON.stringify(value.format)}`);
  if (typeof value.id !== 'string' || value.id === '') fail('id', 'must be a non-empty string');
  if (!MODEL_KINDS.includes(value.kind as ModelKind)) fail('kind', `must be one of ${MODEL_KINDS.join(', ')}`);
  if (!isRecord(value.exporter) || !Number.isInteger(value.exporter.opset)) fail('exporter.opset', 'must be an integer');
  if (!isRecord(value.config)) fail('config', 'must be an object');
  if (!isRecord(value.defaults)) fail('defaults', 'must be an object');
  const isStringList = (list: unknown) => Array.isArray(list) && list.every((item) => typeof item === 'string' && item !== '');
  if (!isStringList(value.structural)) fail('structural', 'must be an array of config paths');
  if (!isStringList(value.variable)) fail('variable', 'must be an array of config paths');
  if (value.upstream !== undefined && !isStringList(value.upstream)) fail('upstream', 'must be an array of hub ids');
  if (value.ignoredKeySuffixes !== undefined && !isStringList(value.ignoredKeySuffixes)) fail('ignoredKeySuffixes', 'must be an array of key suffixes');
  const variables = new Set(value.variable as string[]);
  const isConfigDim = (dim: unknown): dim is ConfigDim => isRecord(dim) && typeof dim.config === 'string';
  const checkConfigDim = (field: string, dim: ConfigDim) => {
    if (!variables.has(dim.config)) fail(field, `follows ${dim.config}, which is not listed in variable`);
  };

  if (!isRecord(value.graphs) || Object.keys(value.graphs).length === 0) return fail('graphs', 'must be a non-empty object');
  for (const [graphName, graph] of Object.entries(value.graphs)) {
    const field = `graphs.${graphName}`;
    if (!isRecord(graph)) return fail(field, 'must be an object');
    const graphFile = graph.file;
    if (typeof graphFile !== 'string' || !/^[\w.-]+\.onnx$/.test(graphFile)) fail(`${field}.file`, 'must be a plain .onnx file name');
    if (!(await isFile(path.join(folder, graphFile as string)))) fail(`${field}.file`, `names ${String(graphFile)}, which is not in ${folder}`);
    if (!isRecord(graph.spec)) return fail(`${field}.spec`, 'must be an object');
    for (const side of ['inputs', 'outputs'] as const) {
      const specs = graph.spec[side];
      if (!Array.isArray(specs) || specs.length === 0) return fail(`${field}.spec.${side}`, 'must be a non-empty array');
      specs.forEach((spec: unknown, index) => {
        const specField = `${field}.spec.${side}[${index}]`;
        if (!isRecord(spec) || typeof spec.name !== 'string' || typeof spec.dtype !== 'string' || !Array.isArray(spec.shape)) {
          return fail(specField, 'must have a name, a dtype and a shape');
        }
        spec.shape.forEach((dim: unknown, axis) => {
          if (isConfigDim(dim)) return checkConfigDim(`${specField}.shape[${axis}]`, dim);
          if (!(typeof dim === 'string' && dim !== '') && !(Number.isInteger(dim) && (dim as number) >= 0)) {
            fail(`${specField}.shape[${axis}]`, 'must be a size, a symbolic name or {"config": path}');
          }
        });
      });
    }
    if (!Array.isArray(graph.tensors)) return fail(`${field}.tensors`, 'must be an array');
    const names = new Set<string>();
    graph.tensors.forEach((tensor: unknown, index) => {
      const tensorField = `${field}.tensors[${index}]`;
      if (!isRecord(tensor)) return fail(tensorField, 'must be an object');
      if (typeof tensor.name !== 'string' || tensor.name === '') fail(`${tensorField}.name`, 'must be a non-empty string');
      if (names.has(tensor.name as string)) fail(`${tensorField}.name`, `repeats ${JSON.stringify(tensor.name)}`);
      names.add(tensor.name as string);
      if (!isStringList(tensor.sources) || (tensor.sources as string[]).length === 0) fail(`${tensorField}.sources`, 'must be a non-empty array of keys');
      const shape = tensor.shape;
      if (!Array.isArray(shape) || !shape.every((size) => Number.isInteger(size) && size >= 0)) {
        return fail(`${tensorField}.shape`, 'must be an array of sizes');
      }
      if (tensor.dtype !== 'float32' && tensor.dtype !== 'int64') fail(`${tensorField}.dtype`, 'must be float32 or int64');
      if (tensor.transform !== undefined && tensor.transform !== null && tensor.transform !== 'transpose') {
        fail(`${tensorField}.transform`, 'must be null or "transpose"');
      }
      if (tensor.transform === 'transpose' && shape.length !== 2) fail(`${tensorField}.transform`, 'transposes 2-D tensors only');
      if (tensor.dims !== undefined && tensor.dims !== null) {
        if (!Array.isArray(tensor.dims) || tensor.dims.length !== shape.length) return fail(`${tensorField}.dims`, 'must have one entry per axis');
        tensor.dims.forEach((dim: unknown, axis) => {
          if (dim === null) return;
          if (!isConfigDim(dim)) return fail(`${tensorField}.dims[${axis}]`, 'must be null or {"config": path}');
          checkConfigDim(`${tensorField}.dims[${axis}]`, dim);
        });
      }
    });
  }
  return { ...(value as unknown as Omit<ModelTemplate, 'folder'>), upstream: (value.upstream as string[] | undefined) ?? [], folder };
}

export type { ModelTemplate, TemplateGraph, TemplateTensor, TemplateTensorSpec };
