import { ConversionError } from '../errors/conversion-error.js';
import { blipFamily } from './blip-family.js';
import type { ModelFamily } from './model-family.js';
import { vleFamily } from './vle-family.js';

export const MODEL_FAMILIES: readonly ModelFamily[] = [blipFamily, vleFamily];

/**
 * The family of a checkpoint from its config.json: `model_type` "vle" (or a VLEForVQA architecture) or "blip"; the
 * Python BLIP reader takes a config without model_type as BLIP, and so does this.
 *
 * @throws ConversionError `unsupported_model` for any other model type.
 */
export function familyOf(raw: Record<string, unknown>, configFile: string): ModelFamily {
  const modelType = raw.model_type;
  const architectures = Array.isArray(raw.architectures) ? raw.architectures : [];
  if (modelType === 'vle' || (modelType === undefined && architectures.includes('VLEForVQA'))) return vleFamily;
  if (modelType === 'blip' || modelType === undefined) return blipFamily;
  throw new ConversionError(
    'unsupported_model',
    `${configFile} has model_type ${JSON.stringify(modelType)}; the converter builds "blip" (BLIP captioning) and "vle" (VLE VQA) checkpoints.`,
    { file: configFile, path: 'model_type' },
  );
}
