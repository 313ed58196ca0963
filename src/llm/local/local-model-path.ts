import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_HUB_URL, DEFAULT_LOCAL_LLM, defaultCacheDir, defaultHubUrl, defaultModelsDir, expandHome } from '../../models/defaults.js';
import { findCachedHubSnapshot } from '../../models/hub/hub-cache.js';
import type { HubFile } from '../../models/hub/hub-types.js';

/** Where the local model is expected, whether it is there, and how to get it when it is not. */
export interface LocalModelLocation {
  /** The .gguf path the spec names. */
  path: string;
  /** Whether a file is there now. */
  exists: boolean;
  /** The spec was empty: the default model ({@link DEFAULT_LOCAL_LLM}) in the models folder. */
  isDefault: boolean;
  /** One or two sentences: how to get the file (a download command for the default model). */
  hint: string;
  /** Where `vqa-llm models fetch` (fetchLocalModel) downloads it from: the default model's repository and file, or the hub id given. */
  hub?: { repo: string; file?: string; revision: string };
}

export interface LocateLocalModelOptions {
  /** A .gguf path, a file name in the models folder, or empty for the default model. Default: `VQA_LLM_LOCAL_MODEL`. */
  model?: string;
  /** The models folder that bare names and the default model are looked up in. Default: `defaultModelsDir()`. */
  modelsDir?: string;
  /** The download cache, where fetched GGUF files live. Default: `defaultCacheDir()`. */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
}

// owner/repo (a .gguf ending makes it a relative path instead), or owner/repo/file.gguf, each with an optional @revision.
const HUB_ID = /^([A-Za-z0-9][\w.-]*\/[\w.-]+(?<!\.gguf))(?:\/([\w./-]+\.gguf))?(?:@([\w./-]+))?$/i;

function looksLikePath(spec: string): boolean {
  return spec.includes('/') || spec.includes(path.sep);
}

/**
 * The URL a user downloads the default local model from: one GGUF file, the hub's `resolve` URL.
 *
 * @example
 * ```ts
 * defaultLocalModelUrl(); // 'https://huggingface.co/Qwen/Qwen2.5-1.5B-Instruct-GGUF/resolve/main/qwen2.5-1.5b-instruct-q4_k_m.gguf'
 * ```
 */
export function defaultLocalModelUrl(env: NodeJS.ProcessEnv = process.env): string {
  const endpoint = (env.HF_ENDPOINT || DEFAULT_HUB_URL).replace(/\/+$/, '');
  return `${endpoint}/${DEFAULT_LOCAL_LLM.repo}/resolve/${DEFAULT_LOCAL_LLM.revision}/${DEFAULT_LOCAL_LLM.file}`;
}

/**
 * Where the local model's GGUF file is: a path as given, a bare file name in the models folder, or (no spec) the
 * default model's file there. Only checks; downloads nothing.
 *
 * A hub id (`owner/repo[/file.gguf][@revision]`) and the default model are also found in the download cache once
 * `vqa-llm models fetch` (fetchLocalModel) has fetched them; `hub` says where that downloads from.
 *
 * @example
 * ```ts
 * locateLocalModel({}); // { path: '~/.local/share/vqa-llm/models/qwen2.5-1.5b-instruct-q4_k_m.gguf', exists: false, isDefault: true, hint: 'curl -L -o ...' }
 * locateLocalModel({ model: './tiny.gguf' }).path; // '/current/dir/tiny.gguf'
 * ```
 */
/**
 * The .gguf file a hub spec means among a repository's files: the one named, else the only .gguf, else the Q4_K_M one;
 * undefined when none fits.
 *
 * @internal
 */
export function pickGguf(files: readonly HubFile[], file: string | undefined): HubFile | undefined {
  if (file !== undefined) return files.find((entry) => entry.path === file);
  const ggufs = files.filter((entry) => entry.path.toLowerCase().endsWith('.gguf'));
  return ggufs.length === 1 ? ggufs[0] : ggufs.find((entry) => /q4_k_m/i.test(entry.path));
}

export function locateLocalModel(options: LocateLocalModelOptions = {}): LocalModelLocation {
  const env = options.env ?? process.env;
  const spec = (options.model ?? env.VQA_LLM_LOCAL_MODEL ?? '').trim();
  const modelsDir = options.modelsDir ? path.resolve(expandHome(options.modelsDir)) : defaultModelsDir(env);
  const cacheDir = options.cacheDir ? path.resolve(expandHome(options.cacheDir)) : defaultCacheDir(env);
  const cached = (hub: { repo: string; file?: string; revision: string }): string | undefined => {
    const snapshot = findCachedHubSnapshot(cacheDir, defaultHubUrl(env), hub.repo, hub.revision);
    const file = snapshot && pickGguf(snapshot.files, hub.file);
    const target = snapshot && file ? path.join(snapshot.folder, ...file.path.split('/')) : undefined;
    return target !== undefined && existsSync(target) ? target : undefined;
  };
  if (spec === '') {
    const file = path.join(modelsDir, DEFAULT_LOCAL_LLM.file);
    const hub = { repo: DEFAULT_LOCAL_LLM.repo, file: DEFAULT_LOCAL_LLM.file, revision: DEFAULT_LOCAL_LLM.revision };
    // A copy put in the models folder by hand wins over the one `models fetch` keeps in the cache.
    const fetched = existsSync(file) ? undefined : cached(hub);
    return {
      path: fetched ?? file,
      exists: fetched !== undefined || existsSync(file),
      isDefault: true,
      hint: `Get the default local model (${DEFAULT_LOCAL_LLM.repo}, ${DEFAULT_LOCAL_LLM.license}, about 1 GB) with \`vqa-llm models fetch ${DEFAULT_LOCAL_LLM.repo}/${DEFAULT_LOCAL_LLM.file}\`, or: curl -L --create-dirs -o '${file}' ${defaultLocalModelUrl(env)}`,
      hub,
    };
  }
  const asPath = path.resolve(expandHome(spec));
  const explicitPath = spec.startsWith('.') || spec.startsWith('~') || path.isAbsolute(spec);
  // A spec whose folder exists here is a path (models/model.gguf, sub/dir/model), not a hub id.
  const folderHere = spec.includes('/') && existsSync(path.dirname(asPath));
  const hubMatch = explicitPath || folderHere ? null : HUB_ID.exec(spec);
  if (explicitPath || existsSync(asPath) || (!hubMatch && looksLikePath(spec))) {
    return { path: asPath, exists: existsSync(asPath), isDefault: false, hint: `Check the path given to --llm-model: ${asPath}.` };
  }
  if (!hubMatch) {
    const inFolder = path.join(modelsDir, spec.endsWith('.gguf') ? spec : `${spec}.gguf`);
    return { path: inFolder, exists: existsSync(inFolder), isDefault: false, hint: `Put the .gguf file at ${inFolder}, or pass its path with --llm-model.` };
  }
  const hub = { repo: hubMatch[1]!, file: hubMatch[2], revision: hubMatch[3] ?? 'main' };
  const fetched = cached(hub);
  return {
    path: fetched ?? `${DEFAULT_HUB_URL}/${hub.repo}`,
    exists: fetched !== undefined,
    isDefault: false,
    hint: `Download it with \`vqa-llm models fetch ${spec}\` (a repository with several .gguf files needs owner/repo/FILE.gguf).`,
    hub,
  };
}
