import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');
export const modelsDir = join(root, 'test', 'fixtures', 'models');
export const tinyBlip = join(modelsDir, 'tiny-blip');
export const tinyVle = join(modelsDir, 'tiny-vle');
export const fixtureImage = (name: string): string => join(root, 'test', 'fixtures', 'images', name);

export interface TensorJson {
  dims: number[];
  data: number[];
}

export interface BlipReference {
  model: string;
  inputs: { pixelValues: TensorJson; imageEmbeds: TensorJson }[];
  generation: { name: string; input: number; options: Record<string, number | string>; promptIds: number[]; tokenIds: number[]; text: string }[];
}

export interface VleReference {
  model: string;
  inputs: { pixelValues: TensorJson; imageEmbeds: TensorJson }[];
  cases: { input: number; question: string; inputIds: number[]; attentionMask: number[]; logits: number[]; topK: { answer: string; score: number }[] }[];
}

export function readReference<T>(name: string): T {
  return JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'reference', `${name}.json`), 'utf8')) as T;
}

export function toTensor(json: TensorJson): { data: Float32Array; dims: number[] } {
  return { data: Float32Array.from(json.data), dims: json.dims };
}

export function maxAbsDifference(left: ArrayLike<number>, right: ArrayLike<number>): number {
  if (left.length !== right.length) return Number.POSITIVE_INFINITY;
  let max = 0;
  for (let index = 0; index < left.length; index += 1) max = Math.max(max, Math.abs(left[index]! - right[index]!));
  return max;
}
