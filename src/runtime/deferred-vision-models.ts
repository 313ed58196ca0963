import type { VisionModels } from '../types.js';

/**
 * A `VisionModels` usable before its models have loaded: every call waits for `loading`, and `models` names what is
 * being loaded until it is there. A server can so listen (liveness up, readiness `loading`) during a load that
 * takes seconds for full-size models, instead of refusing connections.
 *
 * @example
 * const vision = deferVisionModels(createVisionModels(options), { caption: 'blip-image-captioning-base', vqa: 'vle-base-for-vqa' });
 * const server = await startVqaServer({ vision, llm });   // listens now; /readyz says "loading" until the models answer
 */
export function deferVisionModels(loading: Promise<VisionModels>, names: { caption: string; vqa: string }): VisionModels & { readonly loaded: boolean } {
  let loaded: VisionModels | undefined;
  // Handled here so that a failed load is not an unhandled rejection; callers see it through every method.
  loading.then(
    (vision) => {
      loaded = vision;
    },
    () => undefined,
  );
  return {
    get loaded() {
      return loaded !== undefined;
    },
    get models() {
      return loaded?.models ?? names;
    },
    loadImage: async (input, options) => (await loading).loadImage(input, options),
    caption: async (image, options) => (await loading).caption(image, options),
    candidates: async (image, question, options) => (await loading).candidates(image, question, options),
    dispose: async () => {
      const vision = await loading.catch(() => undefined);
      await vision?.dispose();
    },
  };
}
