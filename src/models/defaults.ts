import os from 'node:os';
import path from 'node:path';

/**
 * The captioning model used when none is named: the upstream checkpoint, downloaded and converted on first use (or a
 * folder exported from it into the models directory, when there is one).
 *
 * @example
 * const folder = await resolveModel(DEFAULT_CAPTION_MODEL);
 */
export const DEFAULT_CAPTION_MODEL = 'Salesforce/blip-image-captioning-base';

/**
 * The VQA model used when none is named, likewise.
 *
 * @example
 * const folder = await resolveModel(DEFAULT_VQA_MODEL);
 */
export const DEFAULT_VQA_MODEL = 'hfl/vle-base-for-vqa';

/**
 * Environment variables read by model resolution. Options passed in code always win over them.
 *
 * @example
 * process.env[MODEL_ENV.modelsDir] = '/srv/models';
 */
export const MODEL_ENV = {
  /** Folder holding model folders looked up by bare name. */
  modelsDir: 'VQA_LLM_MODELS',
  /** Folder where downloaded models are kept. */
  cacheDir: 'VQA_LLM_CACHE',
  /** Base URL of the hub (or a mirror, e.g. https://hf-mirror.com) that `owner/name` specs download from, as in huggingface_hub. */
  hubEndpoint: 'HF_ENDPOINT',
  /** Older name of `HF_ENDPOINT`, still read when `HF_ENDPOINT` is not set. */
  hubUrl: 'VQA_LLM_HUB_URL',
  /** `1` or `true` forbids every network access during resolution. */
  offline: 'VQA_LLM_OFFLINE',
  /** Extra graph-template folders (separated by `:`, `;` on Windows) searched before the shipped ones when converting. */
  templates: 'VQA_LLM_TEMPLATES',
  /** Bearer token for private or gated repositories, sent to the hub endpoint's origin only (never to a redirect target elsewhere). */
  hubToken: 'HF_TOKEN',
} as const;

/** The manifest's file name inside every model folder. */
export const MANIFEST_FILE = 'vqa-llm.json';

/** Hub used for `owner/name` specs when neither the option, `HF_ENDPOINT` nor `VQA_LLM_HUB_URL` names one. */
export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** Revision downloaded when neither the spec (`owner/name@rev`) nor the option names one. */
export const DEFAULT_REVISION = 'main';

/**
 * Where bare model names are looked up: `VQA_LLM_MODELS`, else `$XDG_DATA_HOME/vqa-llm/models`,
 * else `~/.local/share/vqa-llm/models`. A per-user folder rather than one relative to the working
 * directory, so that a server, the CLI and a script started from anywhere find the same models.
 *
 * @example
 * defaultModelsDir({}); // '/home/me/.local/share/vqa-llm/models'
 * defaultModelsDir({ VQA_LLM_MODELS: './models-data' }); // '/current/dir/models-data'
 */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[MODEL_ENV.modelsDir];
  if (fromEnv) return path.resolve(expandHome(fromEnv));
  const dataHome = env.XDG_DATA_HOME ? path.resolve(env.XDG_DATA_HOME) : path.join(os.homedir(), '.local', 'share');
  return path.join(dataHome, 'vqa-llm', 'models');
}

/**
 * Where downloaded models are kept: `VQA_LLM_CACHE`, else `$XDG_CACHE_HOME/vqa-llm`, else
 * `~/.cache/vqa-llm`.
 *
 * @example
 * defaultCacheDir({}); // '/home/me/.cache/vqa-llm'
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[MODEL_ENV.cacheDir];
  if (fromEnv) return path.resolve(expandHome(fromEnv));
  const cacheHome = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(cacheHome, 'vqa-llm');
}

/**
 * The hub base URL: `HF_ENDPOINT` (the variable huggingface_hub reads, so that a mirror set for Python tools
 * applies here too), else `VQA_LLM_HUB_URL`, else `https://huggingface.co`, without a trailing slash.
 *
 * @example
 * defaultHubUrl({ HF_ENDPOINT: 'https://hf-mirror.com/' }); // 'https://hf-mirror.com'
 * defaultHubUrl({ VQA_LLM_HUB_URL: 'http://127.0.0.1:8080/' }); // 'http://127.0.0.1:8080'
 */
export function defaultHubUrl(env: NodeJS.ProcessEnv = process.env): string {
  return (env[MODEL_ENV.hubEndpoint]?.trim() || env[MODEL_ENV.hubUrl]?.trim() || DEFAULT_HUB_URL).replace(/\/+$/, '');
}

/**
 * Which setting named the hub: the variable to cite when its value is wrong.
 *
 * @example
 * hubUrlSetting({ HF_ENDPOINT: 'hf-mirror.com' }); // 'HF_ENDPOINT'
 */
export function hubUrlSetting(env: NodeJS.ProcessEnv = process.env): string {
  if (env[MODEL_ENV.hubEndpoint]?.trim()) return MODEL_ENV.hubEndpoint;
  if (env[MODEL_ENV.hubUrl]?.trim()) return MODEL_ENV.hubUrl;
  return 'the default hub';
}

/**
 * The hub token: `HF_TOKEN`, or undefined when it is unset or blank.
 *
 * @example
 * defaultHubToken({ HF_TOKEN: 'hf_abc' }); // 'hf_abc'
 */
export function defaultHubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env[MODEL_ENV.hubToken]?.trim() || undefined;
}

/**
 * True when `VQA_LLM_OFFLINE` is `1`, `true` or `yes` (any case).
 *
 * @example
 * isOfflineByEnv({ VQA_LLM_OFFLINE: '1' }); // true
 */
export function isOfflineByEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env[MODEL_ENV.offline]?.trim() ?? '');
}

/**
 * Expands a leading `~`: shells do it, but values from .env files and service units arrive unexpanded.
 *
 * @example
 * expandHome('~/models'); // '/home/me/models'
 */
export function expandHome(value: string): string {
  if (value === '~') return os.homedir();
  if (value.startsWith('~/') || value.startsWith('~\\')) return path.join(os.homedir(), value.slice(2));
  return value;
}

/**
 * The embedded LLM used when none is named (`--llm local`, or `auto` without an OpenAI-compatible endpoint):
 * Qwen2.5-1.5B-Instruct, Q4_K_M, from Qwen's own GGUF repository (Apache-2.0: redistribution and use allowed). It is
 * one file of about 1 GB, looked up as `file` in the models folder. Why this model: docs/local-llm.md.
 *
 * @example
 * const llm = createLocalChatModel({ model: path.join(defaultModelsDir(), DEFAULT_LOCAL_LLM.file) });
 */
export const DEFAULT_LOCAL_LLM = {
  repo: 'Qwen/Qwen2.5-1.5B-Instruct-GGUF',
  file: 'qwen2.5-1.5b-instruct-q4_k_m.gguf',
  revision: 'main',
  license: 'apache-2.0',
} as const;
