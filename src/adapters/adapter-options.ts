// What both in-process adapters (the AI SDK provider and ChatVqaLlm) take: the chain, and how images in messages
// may be given.
import type { VqaChainOptions } from '../../chains/types.js';
import { createVqaChain, VqaChain } from '../../chains/vqa-chain.js';
import { InvalidOptionError } from '../errors/index.js';
import { DEFAULT_IMAGE_LIMITS } from '../image/image-defaults.js';
import type { UrlPolicy } from '../net/index.js';

/** The adapters' defaults, in one place. */
export const VQA_ADAPTER_DEFAULTS = Object.freeze({ imageUrls: false, maxImageBytes: DEFAULT_IMAGE_LIMITS.maxBytes });

export interface VqaAdapterImageOptions {
  /**
   * Accept http(s) image URLs in messages. Default false: messages often carry text from strangers, and a download
   * would let it make this machine connect anywhere (SSRF). `true` fetches https only, from public addresses, through
   * the SSRF-safe fetcher; a {@link UrlPolicy} sets that fetcher's policy (http, host allowlist, timeouts...).
   */
  imageUrls?: boolean | UrlPolicy;
  /** Largest image accepted, in encoded bytes, checked before base64 is decoded or a download completes. Default 20 MiB. */
  maxImageBytes?: number;
}

/** A chain (`{ chain }`, built or as options), or the options to build one (`{ vision, llm, ... }`), and the image settings. */
export type VqaAdapterOptions = ({ chain: VqaChain | VqaChainOptions } | VqaChainOptions) & VqaAdapterImageOptions;

export interface ResolvedAdapterOptions {
  chain: VqaChain;
  imageUrls: false | UrlPolicy;
  maxImageBytes: number;
}

export function resolveAdapterOptions(options: VqaAdapterOptions, caller: string): ResolvedAdapterOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidOptionError('invalid_value', `${caller} needs an options object: { chain } or { vision, llm }.`);
  }
  // modelId belongs to the AI SDK provider; it is not a chain option.
  const { imageUrls = VQA_ADAPTER_DEFAULTS.imageUrls, maxImageBytes = VQA_ADAPTER_DEFAULTS.maxImageBytes, modelId: _modelId, ...rest } = options as VqaAdapterOptions & { modelId?: unknown };
  let chain: VqaChain;
  if ('chain' in rest) chain = rest.chain instanceof VqaChain ? rest.chain : createVqaChain(rest.chain);
  else chain = createVqaChain(rest);
  if (typeof imageUrls !== 'boolean' && (typeof imageUrls !== 'object' || imageUrls === null)) {
    throw new InvalidOptionError('invalid_value', `imageUrls must be a boolean or a URL policy object, got ${JSON.stringify(imageUrls)}.`);
  }
  if (typeof maxImageBytes !== 'number' || !Number.isInteger(maxImageBytes) || maxImageBytes < 1) {
    throw new InvalidOptionError('invalid_value', `maxImageBytes must be a positive integer, got ${JSON.stringify(maxImageBytes)}.`);
  }
  return { chain, imageUrls: imageUrls === true ? {} : imageUrls, maxImageBytes };
}
