import { InvalidOptionError } from '../../errors/invalid-option-error.js';
import { defaultHubUrl, hubUrlSetting } from '../defaults.js';

/** A checked hub base URL. */
export interface HubEndpoint {
  /** Base URL without a trailing slash, e.g. `https://hf-mirror.com` (a path prefix is kept). */
  url: string;
  /** Origin the token may be sent to. */
  origin: string;
  /** Which setting named it (`the endpoint option`, `HF_ENDPOINT`, ...), for error messages. */
  setting: string;
}

/**
 * Checks the hub base URL: the option when given, else `HF_ENDPOINT`, else `VQA_LLM_HUB_URL`, else huggingface.co.
 * A value that is not an http(s) URL is an error naming the setting it came from, not a request to a strange host.
 *
 * @throws InvalidOptionError `invalid_value` when the endpoint is not an http(s) URL.
 * @example
 * parseHubEndpoint({ endpoint: 'https://hf-mirror.com/' }); // { url: 'https://hf-mirror.com', origin: 'https://hf-mirror.com', ... }
 */
export function parseHubEndpoint(options: { endpoint?: string; env?: NodeJS.ProcessEnv } = {}): HubEndpoint {
  const env = options.env ?? process.env;
  const setting = options.endpoint !== undefined ? 'the endpoint option' : hubUrlSetting(env);
  const raw = (options.endpoint ?? defaultHubUrl(env)).trim();
  let parsed: URL | undefined;
  try {
    parsed = new URL(raw);
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.search !== '' || parsed.hash !== '') {
    throw new InvalidOptionError('invalid_value', `The hub endpoint "${raw}" (from ${setting}) is not an http(s) URL such as https://huggingface.co or https://hf-mirror.com.`);
  }
  const url = `${parsed.origin}${parsed.pathname.replace(/\/+$/, '')}`;
  return { url, origin: parsed.origin, setting };
}
