// Upstream checkpoints -> model folders without Python: the weight-less graph templates filled from the checkpoint.
export { convertCheckpoint, type ConvertCheckpointOptions } from './convert-checkpoint.js';
export { listTemplates, readTemplate, shippedTemplatesFolder } from './template-store.js';
export type { ConfigDim, ModelTemplate, TemplateGraph, TemplateTensor, TemplateTensorSpec } from './template-types.js';
