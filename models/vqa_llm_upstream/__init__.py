"""Upstream parity fixtures: checkpoints made with the upstream code (transformers; iflytek/VLE for committed
references), exported by the project's exporter, and the upstream code's own outputs for the TypeScript tests in
test/upstream/. Each part is a module with `make(out, repo, log)` writing into its own folder under `out`, ending
with `done.json` (the tests skip a part without it, or fail under VQA_LLM_REQUIRE_UPSTREAM=1)."""
