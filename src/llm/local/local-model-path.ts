import { existsSync } from 'node:fs';
import path from 'node:path';
import { LocalLlmError } from '../../errors/index.js';
import { DEFAULT_HUB_URL, DEFAULT_LOCAL_LLM, defaultModelsDir, expandHome } from '../../models/defaults.js';

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
}

export interface LocateLocalModelOptions {
  /** A .gguf path, a file name in the models folder, or empty for the default model. Default: `VQA_LLM_LOCAL_MODEL`. */
  model?: string;
  /** The models folder that bare names and the default model are looked up in. Default: `defaultModelsDir()`. */
  modelsDir?: string;
  env?: NodeJS.ProcessEnv;
}

// owner/repo, as the hub names repositories; a .gguf ending makes it a relative path instead.
const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[\w.-]+(?<!\.gguf)$/i;

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
 * A hub id (`owner/repo`) is where the shared hub client will plug in; until then it is
 * refused with a hint to download the file and pass its path.
 *
 * @throws {LocalLlmError} `model_not_found` for a hub id that is not also a local path.
 *
 * @example
 * ```ts
 * locateLocalModel({}); // { path: '~/.local/share/vqa-llm/models/qwen2.5-1.5b-instruct-q4_k_m.gguf', exists: false, isDefault: true, hint: 'curl -L -o ...' }
 * locateLocalModel({ model: './tiny.gguf' }).path; // '/current/dir/tiny.gguf'
 * ```
 */
export function locateLocalModel(options: LocateLocalModelOptions = {}): LocalModelLocation {
  const env = options.env ?? process.env;
  const spec = (options.model ?? env.VQA_LLM_LOCAL_MODEL ?? '').trim();
  const modelsDir = options.modelsDir ? path.resolve(expandHome(options.modelsDir)) : defaultModelsDir(env);
  if (spec === '') {
    const file = path.join(modelsDir, DEFAULT_LOCAL_LLM.file);
    return {
      path: file,
      exists: existsSync(file),
      isDefault: true,
      hint: `Get the default local model (${DEFAULT_LOCAL_LLM.repo}, ${DEFAULT_LOCAL_LLM.license}, about 1 GB) with: curl -L --create-dirs -o '${file}' ${defaultLocalModelUrl(env)}`,
    };
  }
  const asPath = path.resolve(expandHome(spec));
  const explicitPath = spec.startsWith('.') || spec.startsWith('~') || path.isAbsolute(spec);
  if (explicitPath || existsSync(asPath) || (!HUB_ID.test(spec) && looksLikePath(spec))) {
    return { path: asPath, exists: existsSync(asPath), isDefault: false, hint: `Check the path given to --llm-model: ${asPath}.` };
  }
  if (!HUB_ID.test(spec)) {
    const inFolder = path.join(modelsDir, spec.endsWith('.gguf') ? spec : `${spec}.gguf`);
    return { path: inFolder, exists: existsSync(inFolder), isDefault: false, hint: `Put the .gguf file at ${inFolder}, or pass its path with --llm-model.` };
  }
  throw new LocalLlmError('model_not_found', `${spec} looks like a hub id; the local LLM takes a .gguf path for now.`, {
    hint: `Download the .gguf file from ${DEFAULT_HUB_URL}/${spec.split('/').slice(0, 2).join('/')} and pass its path with --llm-model.`,
  });
}
