// The converter's rules on a toy BLIP-family template built in the test (toy-template.ts): no Python fixtures needed.
// The real graphs, against the exporter's folders, are in upstream-convert.test.ts.
import { spawn } from 'node:child_process';
import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '../../dist/src/convert/index.js';
import { CheckpointError } from '../../dist/src/errors/checkpoint-error.js';
import { ConversionError } from '../../dist/src/errors/conversion-error.js';
import { checkModelFolder } from '../../dist/src/models/manifest.js';
import { OnnxGraph } from '../../dist/src/runtime/onnx-session.js';
import type { ProgressEvent } from '../../dist/src/types.js';
import { buildSafetensors, f32, i64 } from '../checkpoints/checkpoint-builders.js';
import { root } from '../helpers/fixtures.js';
import { HIDDEN, KEYS, toyFixture, toyGraph, toyLogits, toyTemplateJson, toyTensors, type ToyFixture } from './toy-template.js';

const { onnx } = onnxProto;

async function expectRejection<T extends Error>(promise: Promise<unknown>): Promise<T> {
  try {
    await promise;
  } catch (error) {
    return error as T;
  }
  throw new Error('expected the conversion to fail');
}

/** Nothing of a failed conversion is left: no `out`, no staging sibling. */
async function expectNothingLeft(out: string): Promise<void> {
  await expect(stat(out)).rejects.toMatchObject({ code: 'ENOENT' });
  const siblings = await readdir(path.dirname(out)).catch(() => [] as string[]);
  expect(siblings.filter((name) => name.includes('.converting-'))).toEqual([]);
}

describe('convertCheckpoint', () => {
  let toy: ToyFixture;

  beforeEach(async () => {
    toy = await toyFixture();
  });
  afterEach(async () => {
    await toy.remove();
  });

  it('should fill the template graph with the checkpoint weights, resized to its vocabulary', async () => {
    const out = toy.out('toy');
    const manifest = await convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates, source: { checkpoint: 'test-org/toy', revision: 'abc' } });

    expect(manifest.kind).toBe('blip-captioner');
    expect(manifest.name).toBe('toy');
    expect(manifest.source).toEqual({ checkpoint: 'test-org/toy', revision: 'abc' });
    expect(manifest.exporter).toMatchObject({ name: 'vqa-llm-convert', template: 'toy-blip' });
    expect(manifest.opset).toBe(17);
    expect(manifest.graphs.textDecoder).toEqual({
      file: 'onnx/toy.onnx',
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', HIDDEN] }],
      outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 5] }],
    });
    expect(Object.keys(manifest.files)).toEqual([
      'config.json',
      'generation_config.json',
      'onnx/toy.onnx',
      'onnx/toy.onnx.data',
      'preprocessor_config.json',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
    // Every size and sha256, the data file's (hashed while written) included.
    await checkModelFolder(out, { kind: 'blip-captioner', verifyChecksums: true });

    const graph = await OnnxGraph.create(path.join(out, 'onnx', 'toy.onnx'), { name: 'textDecoder', ...manifest.graphs.textDecoder! });
    try {
      const rows = [
        [1, 2, 3, 4],
        [-0.5, 0.25, 8, -2],
      ];
      const { logits } = await graph.run({ x: { type: 'float32', data: Float32Array.from(rows.flat()), dims: [2, HIDDEN] } });
      expect(logits!.dims).toEqual([2, 5]);
      const expected = rows.flatMap((row) => toyLogits(row, 5));
      [...logits!.data].forEach((value, index) => expect(value as number).toBeCloseTo(expected[index]!, 5));
    } finally {
      await graph.dispose();
    }
  });

  it('should lay the tensors out at 64-byte offsets of the data file, without intermediate shapes', async () => {
    const out = toy.out('toy');
    await convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates });
    const model = onnx.ModelProto.decode(await readFile(path.join(out, 'onnx', 'toy.onnx')));
    const layout = model.graph!.initializer!.filter((tensor) => tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL).map((tensor) => ({
      name: tensor.name,
      dims: tensor.dims!.map(Number),
      ...Object.fromEntries(tensor.externalData!.map((entry) => [entry.key, entry.value])),
    }));
    expect(layout).toEqual([
      { name: KEYS.gain, dims: [4], location: 'toy.onnx.data', offset: '0', length: '16' },
      { name: KEYS.decoderWeight, dims: [4, 5], location: 'toy.onnx.data', offset: '64', length: '80' },
      { name: KEYS.decoderBias, dims: [5], location: 'toy.onnx.data', offset: '192', length: '20' },
    ]);
    expect(model.graph!.valueInfo).toEqual([]);
    const data = await readFile(path.join(out, 'onnx', 'toy.onnx.data'));
    expect(data.length).toBe(212);
    // The bfloat16 word embeddings become float32, transposed for the MatMul: row 0 of the graph is column 0 of E.
    const weights = new Float32Array(data.buffer.slice(data.byteOffset + 64, data.byteOffset + 144));
    expect([...weights.slice(0, 5)]).toEqual([-0.375, 0.125, -0.25, 0.25, -0.125]);
    expect([...data.subarray(16, 64)].every((byte) => byte === 0)).toBe(true);
  });

  it('should report progress that never goes backwards and ends at 100', async () => {
    const events: ProgressEvent[] = [];
    await convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates, onProgress: (event) => events.push(event) });
    const percentages = events.flatMap((event) => (event.status === 'progress' ? [event.progress!] : []));
    expect(percentages.length).toBeGreaterThan(0);
    percentages.forEach((value, index) => expect(value).toBeGreaterThanOrEqual(percentages[index - 1] ?? 0));
    expect(percentages.at(-1)).toBe(100);
    expect(events[0]).toMatchObject({ status: 'start', task: 'convert:checkpoint', file: 'onnx/toy.onnx.data' });
    expect(events.at(-1)).toEqual({ status: 'ready', task: 'convert:checkpoint' });
  });

  it('should name every structural path that differs, with both values and the Python export command', async () => {
    await toy.writeCheckpoint({ visionHidden: 6 });
    const out = toy.out('wide');
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates }));
    expect(ConversionError.isInstance(error)).toBe(true);
    expect(error.reason).toBe('no_template');
    expect(error.path).toBe('vision_config.hidden_size');
    expect(error.differences).toEqual([
      { path: 'vision_config.hidden_size', checkpoint: 6, template: 4 },
      // BlipConfig ties the decoder's cross-attention width to the vision tower's.
      { path: 'text_config.encoder_hidden_size', checkpoint: 6, template: 4 },
    ]);
    expect(error.message).toContain('vision_config.hidden_size is 6 (template 4)');
    expect(error.message).toContain(`python models/export.py blip --checkpoint ${toy.checkpoint} --out ${out}`);
    await expectNothingLeft(out);
  });

  it('should name a tensor the checkpoint lacks, and its file', async () => {
    const tensors = toyTensors(5);
    delete tensors[KEYS.gain];
    await toy.writeCheckpoint({ tensors });
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
    expect(error).toMatchObject({ name: 'ConversionError', reason: 'missing_key', key: KEYS.gain, file: path.join(toy.checkpoint, 'model.safetensors') });
    expect(error.message).toContain(KEYS.gain);
  });

  it('should read an aliased tensor from whichever name the checkpoint stores', async () => {
    const tensors = toyTensors(5);
    const { [KEYS.bias]: bias, [KEYS.wordEmbeddings]: embeddings, ...rest } = tensors;
    await toy.writeCheckpoint({ tensors: { ...rest, [KEYS.decoderBias]: bias!, [KEYS.decoderWeight]: embeddings!, [KEYS.bias]: bias! } });
    const manifest = await convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates });
    expect(manifest.graphs.textDecoder!.outputs[0]!.shape).toEqual(['batch', 5]);
  });

  it('should read a checkpoint sharded over several safetensors files, naming the shard of a bad tensor', async () => {
    const tensors = toyTensors(5);
    const { [KEYS.gain]: gain, ...rest } = tensors;
    await toy.writeCheckpoint();
    await rm(path.join(toy.checkpoint, 'model.safetensors'));
    const first = 'model-00001-of-00002.safetensors';
    const second = 'model-00002-of-00002.safetensors';
    await writeFile(path.join(toy.checkpoint, first), buildSafetensors({ [KEYS.gain]: gain! }));
    await writeFile(path.join(toy.checkpoint, second), buildSafetensors(rest));
    const weightMap = Object.fromEntries([[KEYS.gain, first], ...Object.keys(rest).map((key) => [key, second])]);
    await writeFile(path.join(toy.checkpoint, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const out = toy.out('sharded');
    await convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates });
    const graph = await OnnxGraph.create(path.join(out, 'onnx', 'toy.onnx'), { name: 'textDecoder', inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }], outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 5] }] });
    try {
      const { logits } = await graph.run({ x: { type: 'float32', data: Float32Array.from([1, -1, 0.5, 2]), dims: [1, HIDDEN] } });
      toyLogits([1, -1, 0.5, 2], 5).forEach((value, index) => expect(logits!.data[index] as number).toBeCloseTo(value, 5));
    } finally {
      await graph.dispose();
    }

    await writeFile(path.join(toy.checkpoint, first), buildSafetensors({ [KEYS.gain]: { dtype: 'I64', shape: [HIDDEN], data: i64(1n, 2n, 3n, 4n) } }));
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('integer'), templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'dtype_mismatch', key: KEYS.gain, file: path.join(toy.checkpoint, first) });
  });

  it('should refuse a tensor no graph uses, but not the position ids the Python loaders drop', async () => {
    await toy.writeCheckpoint({ tensors: { ...toyTensors(5), 'text_decoder.extra.weight': { dtype: 'F32', shape: [1], data: f32(1) } } });
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'unexpected_key', key: 'text_decoder.extra.weight', file: path.join(toy.checkpoint, 'model.safetensors') });
  });

  it('should name a tensor whose shape disagrees with the config', async () => {
    const tensors = toyTensors(5);
    tensors[KEYS.bias] = { dtype: 'F32', shape: [4], data: f32(1, 2, 3, 4) };
    await toy.writeCheckpoint({ tensors });
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'shape_mismatch', key: KEYS.bias });
    expect(error.message).toContain('[4]');
    expect(error.message).toContain('[5]');
  });

  it('should name a truncated weights file and leave nothing behind', async () => {
    const file = path.join(toy.checkpoint, 'model.safetensors');
    await truncate(file, (await stat(file)).size - 10);
    const out = toy.out('toy');
    const error = await expectRejection<CheckpointError>(convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates }));
    expect(CheckpointError.isInstance(error)).toBe(true);
    expect(error.file).toBe(file);
    await expectNothingLeft(out);
  });

  it('should leave nothing at out when aborted while writing weights', async () => {
    const controller = new AbortController();
    const out = toy.out('toy');
    const reason = new DOMException('stop', 'AbortError');
    const promise = convertCheckpoint({
      checkpoint: toy.checkpoint,
      out,
      templates: toy.templates,
      signal: controller.signal,
      onProgress: (event) => event.status === 'progress' && controller.abort(reason),
    });
    await expect(promise).rejects.toBe(reason);
    await expectNothingLeft(out);
  });

  it('should refuse an existing output folder unless asked to replace it', async () => {
    const out = toy.out('toy');
    await convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates });
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'output_exists', file: out });
    await toy.writeCheckpoint({ vocab: 7 });
    const manifest = await convertCheckpoint({ checkpoint: toy.checkpoint, out, templates: toy.templates, overwrite: true });
    expect(manifest.graphs.textDecoder!.outputs[0]!.shape).toEqual(['batch', 7]);
    await checkModelFolder(out, { verifyChecksums: true });
    expect((await readdir(path.dirname(out))).sort()).toEqual(['toy']);
  });

  it('should refuse a template whose graph disagrees with its template.json', async () => {
    await toy.remove();
    toy = await toyFixture({ graph: toyGraph({ decoderDims: [HIDDEN, 9] }) });
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'bad_template', file: path.join(toy.templates, 'toy-blip', 'toy.onnx') });
    expect(error.message).toContain(KEYS.decoderWeight);
  });

  it('should refuse a template.json that misses a field, naming it', async () => {
    const template = toyTemplateJson();
    delete template.structural;
    await writeFile(path.join(toy.templates, 'toy-blip', 'template.json'), JSON.stringify(template));
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'bad_template' });
    expect(error.message).toContain('structural');
  });

  it('should refuse a checkpoint of another model type', async () => {
    await writeFile(path.join(toy.checkpoint, 'config.json'), JSON.stringify({ model_type: 'llama' }));
    const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
    expect(error).toMatchObject({ reason: 'unsupported_model', path: 'model_type', file: path.join(toy.checkpoint, 'config.json') });
  });

  it('should convert in a process that has no python3 on its PATH', async () => {
    const out = toy.out('no-python');
    const script = `
      import { convertCheckpoint } from ${JSON.stringify(path.join(root, 'dist', 'src', 'convert', 'index.js'))};
      const manifest = await convertCheckpoint({ checkpoint: process.argv[1], out: process.argv[2], templates: process.argv[3] });
      console.log(JSON.stringify(Object.keys(manifest.files)));`;
    // Only node's own folder on PATH: any attempt to run python would fail the conversion.
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, toy.checkpoint, out, toy.templates], {
      env: { PATH: path.dirname(process.execPath) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, output).toBe(0);
    expect(JSON.parse(output)).toContain('onnx/toy.onnx.data');
    await checkModelFolder(out, { verifyChecksums: true });
  });
});

describe('convertCheckpoint options', () => {
  it('should refuse a template folder that does not exist', async () => {
    const toy = await toyFixture();
    try {
      const missing = path.join(toy.root, 'nowhere');
      const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: missing }));
      expect(error).toMatchObject({ reason: 'bad_template', file: missing });
    } finally {
      await toy.remove();
    }
  });

  it('should refuse a folder without config.json', async () => {
    const toy = await toyFixture();
    try {
      await writeFile(path.join(toy.checkpoint, 'model.safetensors'), buildSafetensors(toyTensors(5)));
      await rm(path.join(toy.checkpoint, 'config.json'));
      const error = await expectRejection<ConversionError>(convertCheckpoint({ checkpoint: toy.checkpoint, out: toy.out('toy'), templates: toy.templates }));
      expect(error).toMatchObject({ reason: 'missing_file', file: path.join(toy.checkpoint, 'config.json') });
    } finally {
      await toy.remove();
    }
  });
});
