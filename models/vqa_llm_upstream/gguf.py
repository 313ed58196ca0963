"""gguf: tiny GGUF language models with random weights for the embedded LLM's tests (node-llama-cpp, for real).

Written by models/make_tiny_gguf.py (the `gguf` package): `tiny.gguf` (a 2-layer llama-architecture model with a
~400-token vocabulary and a ChatML chat template, well under 2 MB) and the bad inputs the loader must refuse with a
reason: `no-template.gguf`, `unknown-arch.gguf`, `truncated.gguf`, `not-gguf.gguf`; `summary.json` describes them.
test/llm/local-*.test.ts and the CLI test load them. `base` changes nothing: bench/local-llm.ts uses the full-size
stand-in (`make_tiny_gguf.py --full-size`).
"""

import os
import sys


def make(folder, repo, base=False, log=print):
    sys.path.insert(0, os.path.join(repo, "models"))
    import make_tiny_gguf

    make_tiny_gguf.make_tiny(folder, log=log)
