import { DEFAULT_IMAGE_LIMITS } from '../image/image-defaults.js';

/**
 * Every default of the server, in one place so that the CLI help, the printed configuration and the README quote
 * the same numbers. The hardening issue tightens these; nothing else should hard-code them.
 */
export const SERVER_DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  /** The name `/v1/models` lists and `model` must match. */
  modelName: 'vqa-llm',
  /**
   * Largest request body. A base64 data URL is 4/3 of the image, so this admits an image of the loader's
   * `maxBytes` (20 MiB) inside JSON with room to spare.
   */
  bodyLimitBytes: Math.ceil((DEFAULT_IMAGE_LIMITS.maxBytes * 4) / 3) + 1024 * 1024,
  maxImageBytes: DEFAULT_IMAGE_LIMITS.maxBytes,
  /** Off: a URL from a client makes the server connect wherever the client says (SSRF). */
  allowImageUrls: false,
  /**
   * Requests answered at once; the rest wait in order. Vision is CPU-bound and runs in each model's worker pool,
   * the LLM step is I/O: a few requests in flight keep both busy without piling work onto two cores.
   */
  maxConcurrency: 4,
  maxMessages: 64,
  maxTopK: 20,
  logLevel: 'info',
  web: true,
} as const;
