// The defaults of `vqa-llm worker` and its health endpoint, in a module with no imports: the CLI registers the
// command (and prints `--help`) from these without loading the queue's Redis client, sharp or prom-client.

/** `drainTimeoutMs`: the bound `vqa-llm worker` gives `close` at SIGTERM, under Kubernetes' 60 s grace period. */
export const EVAL_WORKER_DEFAULTS = { concurrency: 1, lockDurationMs: 30_000, maxStalledCount: 3, drainTimeoutMs: 50_000 } as const;

export const WORKER_HEALTH_DEFAULTS = { host: '127.0.0.1', pingTimeoutMs: 500 } as const;
