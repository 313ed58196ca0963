// The embedded LLM's GGUF file from the hub: one file of a repository, through the same client (cache, resume, sha256,
// HF_ENDPOINT, HF_TOKEN, offline) that fetches the vision checkpoints.
import path from 'node:path';

import { LocalLlmError } from '../../errors/local-llm-error.js';
import { downloadHubSnapshot } from '../../models/hub/download-hub-snapshot.js';
import type { HubFile } from '../../models/hub/hub-types.js';
import type { ProgressCallback } from '../../types.js';
import { locateLocalModel, pickGguf, type LocateLocalModelOptions } from './local-model-path.js';

export interface FetchLocalModelOptions extends LocateLocalModelOptions {
  /** Hub base URL. Default: `HF_ENDPOINT`, else `VQA_LLM_HUB_URL`, else https://huggingface.co. */
  hubUrl?: string;
  /** Refuse to download: only a file already on disk or in the cache. Default: `VQA_LLM_OFFLINE`. */
  offline?: boolean;
  /** Download progress (task `download:owner/repo`), the size first. */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

/**
 * The local model's .gguf path, downloaded first when it is a hub id (or the default model) not yet in the cache: a
 * path or a file in the models folder is returned as it is. A repository id without a file name takes the
 * repository's only .gguf file, else its Q4_K_M one.
 *
 * @throws LocalLlmError `model_not_found` when a repository has no such .gguf file (the message lists the ones it has)
 * or a path does not exist; the hub client's errors (ModelNotFoundError offline or for a missing repository,
 * ModelDownloadError, ModelIntegrityError) as they come.
 * @example
 * const file = await fetchLocalModel({}); // the default model, downloaded once into ~/.cache/vqa-llm
 * const llm = createLocalChatModel({ model: file });
 */
export async function fetchLocalModel(options: FetchLocalModelOptions = {}): Promise<string> {
  const location = locateLocalModel(options);
  if (location.exists) return location.path;
  if (!location.hub) throw new LocalLlmError('model_not_found', `No local model at ${location.path}.`, { hint: location.hint });
  const { repo, file, revision } = location.hub;
  const snapshot = await downloadHubSnapshot({
    repo,
    revision,
    endpoint: options.hubUrl,
    cacheDir: options.cacheDir,
    offline: options.offline,
    select: (files) => [chooseGguf(files, repo, file)],
    onProgress: options.onProgress,
    signal: options.signal,
    fetch: options.fetch,
  });
  return path.join(snapshot.folder, ...snapshot.files[0]!.path.split('/'));
}

function chooseGguf(files: HubFile[], repo: string, file: string | undefined): HubFile {
  const chosen = pickGguf(files, file);
  if (chosen) return chosen;
  const ggufs = files.filter((entry) => entry.path.toLowerCase().endsWith('.gguf'));
  const listed = ggufs.map((entry) => entry.path).slice(0, 20).join(', ');
  throw new LocalLlmError(
    'model_not_found',
    file !== undefined ? `${repo} has no file ${file}.` : `${repo} holds ${ggufs.length === 0 ? 'no .gguf file' : `several .gguf files and no Q4_K_M one`}.`,
    { hint: ggufs.length > 0 ? `Name one: ${repo}/FILE.gguf, with FILE.gguf among ${listed}.` : `Choose a repository that holds GGUF files.` },
  );
}
