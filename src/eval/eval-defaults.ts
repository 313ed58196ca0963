/** Defaults of `runEval` (./run-eval.ts), apart from it so that the CLI's `--help` quotes them without loading the evaluation. */
export const RUN_EVAL_DEFAULTS = { concurrency: 2 } as const;
