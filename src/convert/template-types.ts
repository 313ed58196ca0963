// The weight-less graph templates (`templates/<id>/template.json` + graphs), as the Python template writer makes them
// (contract: issue 9). Names stay as the file spells them: the JSON is shared with Python.
import type { ModelKind } from '../models/manifest.js';

/** A size that follows the checkpoint's completed config (`text_config.vocab_size`, `num_labels`). */
export interface ConfigDim {
  config: string;
}

/** A graph input or output as the manifest lists it; a dim tied to a variable is a ConfigDim. */
export interface TemplateTensorSpec {
  name: string;
  dtype: string;
  shape: Array<number | string | ConfigDim>;
}

/** One external initializer of a graph, filled from the checkpoint. */
export interface TemplateTensor {
  /** The initializer's name in the graph. */
  name: string;
  /** Upstream state-dict keys; the first the checkpoint holds is read (aliases: tied heads, `bias`/`decoder.bias`). */
  sources: string[];
  /** The tensor's shape in the checkpoint (the template's own config; variables substituted per checkpoint). */
  shape: number[];
  /** Per axis: the config path the size follows, or null for a fixed size. */
  dims?: Array<ConfigDim | null>;
  dtype: 'float32' | 'int64';
  /** `transpose`: a 2-D checkpoint tensor [a, b] goes into the graph as [b, a]. */
  transform?: 'transpose' | null;
}

export interface TemplateGraph {
  /** The graph file in the template folder; the model folder gets onnx/<file> and onnx/<file>.data. */
  file: string;
  spec: { inputs: TemplateTensorSpec[]; outputs: TemplateTensorSpec[] };
  /** In the order of the data file. */
  tensors: TemplateTensor[];
}

export interface ModelTemplate {
  format: 'vqa-llm-template/1';
  id: string;
  kind: ModelKind;
  upstream: string[];
  exporter: { torch?: string; transformers?: string; opset: number; [key: string]: unknown };
  /** The completed config.json the exporter writes for this architecture. */
  config: Record<string, unknown>;
  /** The exporter's config completion tables (BLIP: top/text/vision; VLE: vision/text/fusion). */
  defaults: Record<string, unknown>;
  /** Config paths that decide the graph: a checkpoint must agree on every one. */
  structural: string[];
  /** Config paths that may differ: tensors and graph dims tied to them are resized. */
  variable: string[];
  /** Checkpoint keys the Python loaders drop, by suffix (buffers the graphs compute themselves). */
  ignoredKeySuffixes?: string[];
  graphs: Record<string, TemplateGraph>;
  /** The folder holding template.json and the graph files. */
  folder: string;
}
