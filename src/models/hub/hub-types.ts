import type { ProgressCallback } from '../../types.js';

/** One file of a hub repository at a commit, as the hub's API lists it. */
export interface HubFile {
  /** Path inside the repository, `/`-separated. */
  path: string;
  /** Size in bytes of the file's content (for an LFS file: of the real file, not its pointer). */
  size: number;
  /** sha256 of the content, known for files stored in LFS. */
  sha256?: string;
  /** Git blob id: for a file in git, the sha1 of its content as a git blob; for an LFS file, of its pointer. */
  blobId?: string;
  /** True when the file is stored in LFS (its bytes come from a CDN). */
  lfs: boolean;
}

/** Chooses which of a repository's files to download. */
export type HubFileSelection = (files: HubFile[]) => HubFile[];

/** How failed requests are retried (429, 5xx, network errors, cut connections). */
export interface HubRetryOptions {
  /** Attempts per request, the first included. Default 5. */
  attempts?: number;
  /** First back-off delay; it doubles on each retry. Default 1000 ms. */
  minDelayMs?: number;
  /** Longest wait between attempts, `Retry-After` included: a hub asking for more fails at once. Default 60000 ms. */
  maxDelayMs?: number;
}

export interface DownloadHubSnapshotOptions {
  /** Repository id, `owner/name`. */
  repo: string;
  /** Branch, tag or commit sha. Default `main`. */
  revision?: string;
  /** Hub base URL. Default: `HF_ENDPOINT`, else `VQA_LLM_HUB_URL`, else `https://huggingface.co`. */
  endpoint?: string;
  /**
   * Bearer token for private or gated repositories. Default `HF_TOKEN`. Sent to the endpoint's origin only, never
   * to a redirect target on another origin (the CDN), as huggingface_hub does.
   */
  token?: string;
  /** Cache root. Default: `VQA_LLM_CACHE`, else `~/.cache/vqa-llm` (see `defaultCacheDir`). */
  cacheDir?: string;
  /** Refuse every request and use the cache only. Default: true when `VQA_LLM_OFFLINE` is `1`/`true`/`yes`. */
  offline?: boolean;
  /** Which files to fetch. Default `selectCheckpointFiles`: the configs, the tokenizer files and one weights format. */
  select?: HubFileSelection;
  /**
   * Progress under task `download:owner/name[@revision]`: first `start` without a file and with `total` = the bytes
   * still to download (said before any of them is fetched), then `start`/`progress`/`done` per file, then `ready`.
   * `progress` is the percentage of that total; it never goes backwards and ends at 100.
   */
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Replaces the global fetch (proxies, tests). */
  fetch?: typeof fetch;
  /** Retry policy for 429, 5xx and network errors. */
  retry?: HubRetryOptions;
  /** A response that sends nothing for this long is dropped and retried (resuming where it stopped). Default 60000 ms. */
  stallTimeoutMs?: number;
}

/** A downloaded snapshot: the folder holds the selected files under their repository paths. */
export interface HubSnapshot {
  /** Absolute path of the snapshot folder. */
  folder: string;
  /** The commit the revision resolved to. */
  commit: string;
  /** The files in the folder that this call selected, sorted by path. */
  files: { path: string; size: number; sha256?: string }[];
}
