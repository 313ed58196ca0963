import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlipCaptioner } from '../../dist/src/runtime/blip-captioner.js';
import { OnnxGraph } from '../../dist/src/runtime/onnx-session.js';
import { GraphMismatchError, InvalidOptionError, ModelIntegrityError } from '../../dist/src/errors/index.js';
import { fixtureImage, maxAbsDifference, readReference, tinyBlip, toTensor, type BlipReference } from '../helpers/fixtures.js';

const reference = readReference<BlipReference>('tiny-blip');

describe('BlipCaptioner on tiny-blip', () => {
  let captioner: BlipCaptioner;

  beforeAll(async () => {
    captioner = await BlipCaptioner.load(tinyBlip, { workers: 1 });
  });

  afterAll(async () => {
    await captioner.dispose();
  });

  it("should reproduce PyTorch's image embeddings within 1e-4", async () => {
    const manifest = JSON.parse(await readFile(join(tinyBlip, 'vqa-llm.json'), 'utf8'));
    const graph = await OnnxGraph.create(join(tinyBlip, manifest.graphs.visionEncoder.file), { name: 'visionEncoder', ...manifest.graphs.visionEncoder });
    for (const input of reference.inputs) {
      const pixels = toTensor(input.pixelValues);
      const { image_embeds } = await graph.run({ pixel_values: { type: 'float32', data: pixels.data, dims: pixels.dims } });
      expect(image_embeds!.dims).toEqual(input.imageEmbeds.dims);
      expect(maxAbsDifference(image_embeds!.data as Float32Array, input.imageEmbeds.data)).toBeLessThan(1e-4);
    }
    await graph.dispose();
  });

  for (const testCase of reference.generation) {
    it(`should generate PyTorch's token ids and text (${testCase.name}: ${JSON.stringify(testCase.options)})`, async () => {
      expect(captioner.promptIds(testCase.options.prefix as string | undefined)).toEqual(testCase.promptIds);
      const result = await captioner.captionPixels(toTensor(reference.inputs[testCase.input]!.pixelValues), testCase.options);
      expect(result.tokenIds).toEqual(testCase.tokenIds);
      expect(result.caption).toBe(testCase.text);
    });
  }

  it('should cache the caption per image bytes and say so', async () => {
    captioner.clearCache();
    const first = await captioner.caption(fixtureImage('fishing.jpg'));
    const second = await captioner.caption(await readFile(fixtureImage('fishing.jpg')));
    expect(first.cached).toBe(false);
    expect(second.cached).toBe(true);
    expect(second.caption).toBe(first.caption);
    expect(second.timings.vision).toBeUndefined();
  });

  it('should decode from cached image embeddings exactly as from pixels, in workers and in-process alike', async () => {
    captioner.clearCache();
    await captioner.caption(fixtureImage('truck.jpg'), { maxNewTokens: 4 });
    const fromCache = await captioner.caption(fixtureImage('truck.jpg'), { numBeams: 3, maxNewTokens: 10 });
    expect(fromCache.timings.vision).toBeUndefined();
    const inProcess = await BlipCaptioner.load(tinyBlip, { workers: 0 });
    try {
      const fresh = await inProcess.caption(fixtureImage('truck.jpg'), { numBeams: 3, maxNewTokens: 10 });
      expect(fresh.timings.vision).toBeGreaterThanOrEqual(0);
      expect(fromCache.tokenIds).toEqual(fresh.tokenIds);
    } finally {
      await inProcess.dispose();
    }
  });

  it('should refuse bad generation options, naming the option', async () => {
    await expect(captioner.caption(fixtureImage('truck.jpg'), { numBeams: 0 })).rejects.toThrow(/numBeams/);
    await expect(captioner.caption(fixtureImage('truck.jpg'), { maxNewTokens: 2.5 })).rejects.toSatisfy(InvalidOptionError.isInstance);
    await expect(captioner.caption(fixtureImage('truck.jpg'), { repetitionPenalty: -1 })).rejects.toThrow(/repetitionPenalty/);
  });

  it('should reject with the abort reason when the signal aborts', async () => {
    const controller = new AbortController();
    controller.abort(new Error('user gave up'));
    await expect(captioner.caption(fixtureImage('truck.jpg'), { signal: controller.signal })).rejects.toThrow('user gave up');
    const late = new AbortController();
    const pending = captioner.captionPixels(toTensor(reference.inputs[0]!.pixelValues), { numBeams: 4, maxNewTokens: 30, signal: late.signal });
    late.abort(new Error('too slow'));
    await expect(pending).rejects.toThrow('too slow');
    // The worker survives a cancelled task and keeps serving.
    const after = await captioner.captionPixels(toTensor(reference.inputs[0]!.pixelValues), reference.generation[0]!.options);
    expect(after.tokenIds).toEqual(reference.generation[0]!.tokenIds);
  });
});

describe('BlipCaptioner.load with a broken folder', () => {
  let folder: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'vqa-llm-broken-'));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('should name the missing graph file and the command that creates it', async () => {
    const copy = join(folder, 'missing');
    await cp(tinyBlip, copy, { recursive: true });
    await rm(join(copy, 'onnx', 'text_decoder.onnx'));
    const error = await BlipCaptioner.load(copy, { workers: 0 }).catch((caught: unknown) => caught);
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('onnx/text_decoder.onnx');
    expect((error as Error).message).toMatch(/models export|models:test/);
  });

  it('should refuse a graph whose inputs differ from the manifest', async () => {
    const copy = join(folder, 'mismatch');
    await cp(tinyBlip, copy, { recursive: true });
    const manifestPath = join(copy, 'vqa-llm.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    manifest.graphs.visionEncoder.inputs[0].name = 'pixels';
    await writeFile(manifestPath, JSON.stringify(manifest));
    const error = await BlipCaptioner.load(copy, { workers: 1 }).catch((caught: unknown) => caught);
    expect(GraphMismatchError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/pixels/);
  });

  it('should report a checksum mismatch when asked to verify', async () => {
    const copy = join(folder, 'tampered');
    await cp(tinyBlip, copy, { recursive: true });
    const configPath = join(copy, 'generation_config.json');
    // Same size, still valid JSON, different bytes: only the checksum can tell.
    const bytes = await readFile(configPath);
    bytes[bytes.indexOf(0x20)] = 0x09;
    await writeFile(configPath, bytes);
    const error = await BlipCaptioner.load(copy, { workers: 0, verifyChecksums: true }).catch((caught: unknown) => caught);
    expect(ModelIntegrityError.isInstance(error)).toBe(true);
    expect((error as ModelIntegrityError).reason).toBe('checksum_mismatch');
    expect((error as Error).message).toContain('generation_config.json');
  });
});
