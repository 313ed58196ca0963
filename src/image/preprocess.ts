import { InvalidOptionError } from '../errors/index.js';
import type { FloatTensor, LoadedImage, PreprocessorConfig } from '../types.js';
import { resizeRgbLikePil, type Window } from './pil-resample.js';
import { SUPPORTED_RESAMPLE } from './preprocessor-config.js';

/**
 * Turns a loaded image into a model's `pixel_values`: `[1, 3, H, W]` float32, channel-first, computed as
 * Hugging Face's image processors (BlipImageProcessor, CLIPImageProcessor) compute it: PIL resize on the
 * 8-bit image, center crop (zero padding where the crop is larger), rescale, normalize, in float32.
 *
 * @example
 * const image = await loadImage('photos/dogs.jpg');
 * const pixelValues = await preprocessImage(image, config); // config from parsePreprocessorConfig
 * pixelValues.dims; // [1, 3, 384, 384] for BLIP
 */
export async function preprocessImage(image: LoadedImage, config: PreprocessorConfig): Promise<FloatTensor> {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length !== width * height * 3) {
    throw new InvalidOptionError('invalid_value', `The image is inconsistent: ${width}x${height} needs ${width * height * 3} RGB bytes, it has ${data.length}.`);
  }
  if (!(SUPPORTED_RESAMPLE as readonly number[]).includes(config.resample)) {
    throw new InvalidOptionError('invalid_value', `resample must be a PIL resampling code (${SUPPORTED_RESAMPLE.join(', ')}), got ${config.resample}.`);
  }
  const [resizedWidth, resizedHeight] = config.doResize ? resizeTarget(width, height, config.size) : [width, height];

  let crop = { top: 0, left: 0, height: resizedHeight, width: resizedWidth };
  if (config.doCenterCrop) {
    if (!config.cropSize) throw new InvalidOptionError('invalid_value', 'doCenterCrop is true but cropSize is missing.');
    const { height: cropHeight, width: cropWidth } = config.cropSize;
    // Python's floor division, as HF's center_crop: negative when the crop is larger than the image.
    crop = {
      top: Math.floor((resizedHeight - cropHeight) / 2),
      left: Math.floor((resizedWidth - cropWidth) / 2),
      height: cropHeight,
      width: cropWidth,
    };
  }
  // The part of the crop that lies on the resized image; the rest is HF's zero padding.
  const window: Window = {
    left: Math.max(crop.left, 0),
    top: Math.max(crop.top, 0),
    width: Math.min(crop.left + crop.width, resizedWidth) - Math.max(crop.left, 0),
    height: Math.min(crop.top + crop.height, resizedHeight) - Math.max(crop.top, 0),
  };
  const pixels = resizeRgbLikePil(data, width, height, resizedWidth, resizedHeight, config.resample, window);

  const table = valueTable(config);
  const plane = crop.width * crop.height;
  const output = new Float32Array(3 * plane);
  for (let channel = 0; channel < 3; channel++) output.fill(table[channel * 256]!, channel * plane, (channel + 1) * plane);
  const offsetY = window.top - crop.top;
  const offsetX = window.left - crop.left;
  for (let y = 0; y < window.height; y++) {
    const rowOut = (y + offsetY) * crop.width + offsetX;
    const rowIn = y * window.width * 3;
    for (let x = 0; x < window.width; x++) {
      const p = rowIn + x * 3;
      const o = rowOut + x;
      output[o] = table[pixels[p]!]!;
      output[plane + o] = table[256 + pixels[p + 1]!]!;
      output[2 * plane + o] = table[512 + pixels[p + 2]!]!;
    }
  }
  return { data: output, dims: [1, 3, crop.height, crop.width] };
}

/**
 * Output size of the resize, `[width, height]`; for a shortest-edge size, HF's
 * `get_resize_output_image_size(default_to_square=False)`: the long side is truncated, not rounded.
 */
export function resizeTarget(width: number, height: number, size: PreprocessorConfig['size']): [number, number] {
  if ('shortestEdge' in size) {
    const shortest = size.shortestEdge;
    const [short, long] = width <= height ? [width, height] : [height, width];
    // Same operation order as Python's int(size * long / short), so the float rounds alike.
    const newLong = Math.trunc((shortest * long) / short);
    return width <= height ? [shortest, newLong] : [newLong, shortest];
  }
  return [size.width, size.height];
}

// Every output value depends on one byte and its channel: 3 x 256 float32 values computed with HF's
// operations (float64 rescale cast to float32, then float32 subtraction and division) cover them all.
function valueTable(config: PreprocessorConfig): Float32Array {
  const table = new Float32Array(3 * 256);
  for (let channel = 0; channel < 3; channel++) {
    const mean = Math.fround(config.imageMean[channel]!);
    const std = Math.fround(config.imageStd[channel]!);
    for (let value = 0; value < 256; value++) {
      let x = config.doRescale ? Math.fround(value * config.rescaleFactor) : value;
      if (config.doNormalize) x = Math.fround(Math.fround(x - mean) / std);
      table[channel * 256 + value] = x;
    }
  }
  return table;
}
