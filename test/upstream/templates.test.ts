// The weight-less graph templates (docs/templates.md) that the converter fills from upstream checkpoints. The shipped
// ones (templates/<id>/) are checked for what the converter relies on; the convert part of the upstream outputs
// (models/vqa_llm_upstream/convert.py) regenerates blip-image-captioning-base with the exporter as it is now, and the
// committed template must equal it, so that the shipped graphs cannot drift from the exporter's.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/fixtures.js';
import { describeUpstream, upstreamPath } from './upstream-output.js';

const { onnx } = onnxProto;

type ConfigDim = { config: string };
type Dim = number | string | ConfigDim;

interface TemplateTensor {
  name: string;
  sources: string[];
  shape: number[];
  dims?: (ConfigDim | null)[];
  dtype: string;
  transform: string | null;
}

interface Template {
  format: string;
  id: string;
  family: 'blip' | 'vle';
  kind: string;
  upstream: string[];
  exporter: { torch: string; transformers: string; opset: number };
  config: Record<string, unknown>;
  defaults: Record<string, unknown>;
  structural: string[];
  variable: string[];
  ignoredKeySuffixes: string[];
  graphs: Record<string, { file: string; spec: { inputs: { name: string; shape: Dim[] }[]; outputs: { name: string; shape: Dim[] }[] }; tensors: TemplateTensor[] }>;
}

const SHIPPED = ['blip-image-captioning-base', 'blip-image-captioning-large', 'vle-base-for-vqa', 'vle-large-for-vqa'];
const MAX_FILE_BYTES = 4 * 1024 * 1024;
const GRAPH_KEYS = { blip: ['visionEncoder', 'crossAttentionCache', 'textDecoder'], vle: ['imageEncoder', 'fusion'] };

const templatesDir = join(root, 'templates');
const readTemplate = (folder: string): Template => JSON.parse(readFileSync(join(folder, 'template.json'), 'utf8')) as Template;
const toNumber = (value: number | { toNumber(): number } | null | undefined): number =>
  value === null || value === undefined ? 0 : typeof value === 'number' ? value : value.toNumber();

function configValue(config: Record<string, unknown>, path: string): unknown {
  return path.split('.').reduce<unknown>((value, part) => (value as Record<string, unknown> | undefined)?.[part], config);
}

/** What the converter reads from one template graph: external initializers, inline ones, nodes, inputs and outputs. */
function describeGraph(path: string) {
  const model = onnx.ModelProto.decode(readFileSync(path));
  const graph = model.graph!;
  const external = (graph.initializer ?? [])
    .filter((tensor) => tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL)
    .map((tensor) => ({
      name: tensor.name,
      dims: (tensor.dims ?? []).map(toNumber),
      dataType: tensor.dataType,
      hasBytes: (tensor.rawData?.length ?? 0) > 0 || (tensor.floatData?.length ?? 0) > 0,
      externalData: Object.fromEntries((tensor.externalData ?? []).map((entry) => [entry.key, entry.value])),
    }));
  const inline = (graph.initializer ?? []).filter((tensor) => tensor.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL).map((tensor) => tensor.name);
  return {
    external,
    inline,
    ops: (graph.node ?? []).map((node) => node.opType),
    valueInfo: graph.valueInfo?.length ?? 0,
    inputs: (graph.input ?? []).map((value) => value.name),
    outputs: (graph.output ?? []).map((value) => ({
      name: value.name,
      dims: (value.type?.tensorType?.shape?.dim ?? []).map((dim) => (dim.dimParam ? dim.dimParam : toNumber(dim.dimValue))),
    })),
    opset: toNumber(model.opsetImport?.find((entry) => !entry.domain)?.version),
  };
}

function checkTemplate(folder: string): void {
  const template = readTemplate(folder);
  expect(template.format).toBe('vqa-llm-template/1');
  expect(Object.keys(template.graphs).sort()).toEqual([...GRAPH_KEYS[template.family]].sort());
  for (const path of [...template.structural, ...template.variable]) {
    expect(configValue(template.config, path), `${template.id}: ${path}`).not.toBeUndefined();
  }
  const everySource = new Set<string>();
  for (const [key, graph] of Object.entries(template.graphs)) {
    const onnxGraph = describeGraph(join(folder, graph.file));
    expect(onnxGraph.opset).toBe(template.exporter.opset);
    expect(onnxGraph.valueInfo, `${template.id} ${key}: value_info`).toBe(0);
    expect(onnxGraph.inputs).toEqual(graph.spec.inputs.map((input) => input.name));
    expect(onnxGraph.outputs.map((output) => output.name)).toEqual(graph.spec.outputs.map((output) => output.name));
    // The tensors of template.json are the graph's external initializers, one for one, in the order of the data file.
    expect(onnxGraph.external.map((tensor) => tensor.name)).toEqual(graph.tensors.map((tensor) => tensor.name));
    let end = 0;
    graph.tensors.forEach((tensor, index) => {
      const initializer = onnxGraph.external[index]!;
      expect(tensor.sources.length, `${tensor.name}: sources`).toBeGreaterThan(0);
      expect(tensor.sources[0]).toBe(tensor.name);
      expect(tensor.dtype).toBe('float32');
      expect(tensor.transform).toBeNull();
      expect(tensor.shape.every((size) => Number.isInteger(size) && size > 0), `${tensor.name}: shape`).toBe(true);
      expect(initializer.dims).toEqual(tensor.shape);
      expect(initializer.dataType).toBe(onnx.TensorProto.DataType.FLOAT);
      expect(initializer.hasBytes, `${tensor.name} carries weight bytes`).toBe(false);
      expect(initializer.externalData.location).toBe(`${graph.file}.data`);
      const offset = Number(initializer.externalData.offset);
      expect(offset % 64).toBe(0);
      expect(offset).toBeGreaterThanOrEqual(end);
      expect(Number(initializer.externalData.length)).toBe(4 * tensor.shape.reduce((a, b) => a * b, 1));
      end = offset + Number(initializer.externalData.length);
      if (tensor.dims) {
        expect(tensor.dims).toHaveLength(tensor.shape.length);
        tensor.dims.forEach((dim, axis) => {
          if (dim) {
            expect(template.variable).toContain(dim.config);
            expect(tensor.shape[axis]).toBe(configValue(template.config, dim.config));
          }
        });
      }
      tensor.sources.forEach((source) => everySource.add(source));
    });
    // Graph outputs tied to a variable hold the template's value, which the converter replaces. Other dims are the
    // exporter's: a fixed size there may be a symbolic name in the graph (torch names some, e.g. image_embeds' token
    // count, as it does in the exporter's own folders).
    graph.spec.outputs.forEach((output, index) => {
      output.shape.forEach((dim, axis) => {
        const actual = onnxGraph.outputs[index]!.dims[axis];
        if (typeof dim === 'object') expect(actual, `${key} ${output.name} dim ${axis}`).toBe(configValue(template.config, dim.config));
        else if (typeof actual === 'number' || typeof dim === 'string') expect(actual, `${key} ${output.name} dim ${axis}`).toBe(dim);
      });
    });
  }
  // Every tensor name is a checkpoint key some tensor reads, so that the unused-key check has a complete list.
  expect(everySource.size).toBeGreaterThan(0);
  for (const name of readdirSync(folder)) {
    expect(statSync(join(folder, name)).size, `${folder}/${name}`).toBeLessThan(MAX_FILE_BYTES);
  }
}

describe('shipped graph templates', () => {
  for (const id of SHIPPED) {
    it.skipIf(!existsSync(join(templatesDir, id, 'template.json')))(`should give ${id} weight-less graphs that template.json describes`, () => {
      checkTemplate(join(templatesDir, id));
    });
  }

  it('should give the BLIP templates the tied-head aliases of the Python loader', () => {
    const template = readTemplate(join(templatesDir, 'blip-image-captioning-base'));
    const tensors = new Map(template.graphs.textDecoder!.tensors.map((tensor) => [tensor.name, tensor]));
    expect(tensors.get('text_decoder.cls.predictions.decoder.weight')?.sources).toEqual([
      'text_decoder.cls.predictions.decoder.weight',
      'text_decoder.bert.embeddings.word_embeddings.weight',
    ]);
    expect(tensors.get('text_decoder.cls.predictions.decoder.bias')?.sources).toEqual([
      'text_decoder.cls.predictions.decoder.bias',
      'text_decoder.cls.predictions.bias',
    ]);
    expect(template.graphs.textDecoder!.spec.outputs[0]!.shape).toEqual(['batch', 'sequence', { config: 'text_config.vocab_size' }]);
  });

  const vleShipped = SHIPPED.filter((id) => id.startsWith('vle-')).every((id) => existsSync(join(templatesDir, id, 'template.json')));
  it.skipIf(!vleShipped)('should size the VLE templates for the image size of the checkpoints position tables', () => {
    const base = readTemplate(join(templatesDir, 'vle-base-for-vqa'));
    const large = readTemplate(join(templatesDir, 'vle-large-for-vqa'));
    expect(configValue(base.config, 'vision_config.image_size')).toBe(576);
    expect(configValue(large.config, 'vision_config.image_size')).toBe(504);
    expect(base.graphs.imageEncoder!.spec.outputs[0]!.shape).toEqual(['batch', 1297, 768]);
    expect(large.graphs.imageEncoder!.spec.outputs[0]!.shape).toEqual(['batch', 1297, 1024]);
    expect(base.graphs.fusion!.spec.outputs[0]!.shape).toEqual(['batch', { config: 'num_labels' }]);
  });
});

describeUpstream('convert', 'graph templates made by the exporter now', () => {
  it('should regenerate the shipped blip-image-captioning-base template unchanged', () => {
    const shippedFolder = join(templatesDir, 'blip-image-captioning-base');
    const regeneratedFolder = upstreamPath('convert', 'regenerated', 'blip-image-captioning-base');
    const shipped = readTemplate(shippedFolder);
    const regenerated = readTemplate(regeneratedFolder);
    const { exporter: _shippedExporter, ...shippedRest } = shipped;
    const { exporter: _regeneratedExporter, ...regeneratedRest } = regenerated;
    expect(shippedRest).toEqual(regeneratedRest);
    for (const graph of Object.values(shipped.graphs)) {
      const before = describeGraph(join(shippedFolder, graph.file));
      const after = describeGraph(join(regeneratedFolder, graph.file));
      expect(after.ops, `${graph.file}: node op sequence`).toEqual(before.ops);
      expect(after.external, `${graph.file}: initializers`).toEqual(before.external);
      expect(after.inline).toEqual(before.inline);
      expect(after.outputs).toEqual(before.outputs);
    }
  });

  it('should give the test templates weight-less graphs that template.json describes', () => {
    for (const id of ['blip-tiny', 'vle-small']) checkTemplate(upstreamPath('convert', 'templates', id));
  });

  it('should list every checkpoint case with the files the converter tests read', () => {
    const cases = JSON.parse(readFileSync(upstreamPath('convert', 'cases.json'), 'utf8')) as { name: string; checkpoint: string; reference?: string; expect: unknown }[];
    expect(cases.map((entry) => entry.name).sort()).toEqual(
      ['blip-added-tokens', 'blip-bin-vocab', 'blip-extra-key', 'blip-mismatch', 'blip-missing-key', 'blip-safetensors', 'vle-bin', 'vle-labels', 'vle-safetensors'].sort(),
    );
    for (const entry of cases) {
      expect(existsSync(upstreamPath('convert', entry.checkpoint, 'config.json')), entry.name).toBe(true);
      if (entry.expect === 'ok') expect(existsSync(upstreamPath('convert', entry.reference!)), entry.name).toBe(true);
    }
  });
});
