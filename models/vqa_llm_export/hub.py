"""Hub checkpoints for the exporters: huggingface_hub downloads (HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE and
HF_HUB_OFFLINE as huggingface_hub reads them), one weights format, and failures as one line."""

import os

# Configs (config.json, preprocessor/tokenizer/generation configs), vocab.txt (BLIP), spm.model (VLE).
CONFIG_PATTERNS = ["*.json", "*.txt", "spm.model"]
# safetensors when the repo has them, else the PyTorch .bin: never both, never TensorFlow or Flax weights.
WEIGHT_PATTERNS = (["*.safetensors"], ["*.bin"])


def resolve_checkpoint(checkpoint, revision=None, log=print):
    """A local folder as is -> (folder, revision or "local"); a hub id -> (snapshot folder, commit sha)."""
    if os.path.isdir(checkpoint):
        return checkpoint, revision or "local"
    try:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:
        raise SystemExit(f"error: {checkpoint} is not a folder, and downloading it from the hub needs huggingface_hub: "
                         "pip install -r models/requirements.txt")
    endpoint = constants.ENDPOINT
    at = f" at {revision}" if revision else ""
    log(f"Downloading {checkpoint}{at} from {endpoint} ...")
    try:
        folder = snapshot_download(checkpoint, revision=revision, allow_patterns=CONFIG_PATTERNS + WEIGHT_PATTERNS[0])
        # The snapshot folder is named after the commit the revision resolved to; the fallback asks for that same
        # commit, so that configs and weights cannot come from two commits if the branch moves in between.
        commit = os.path.basename(os.path.normpath(folder))
        if not any(name.endswith(".safetensors") for name in os.listdir(folder)):
            folder = snapshot_download(checkpoint, revision=commit, allow_patterns=CONFIG_PATTERNS + WEIGHT_PATTERNS[1])
    except HFValidationError:
        raise SystemExit(f"error: {checkpoint} is neither a folder nor a hub id (owner/name): check the path.")
    except GatedRepoError:
        raise SystemExit(f"error: {checkpoint} is gated on {endpoint}: accept its terms there, then set HF_TOKEN "
                         "to a token of that account.")
    except RepositoryNotFoundError:
        raise SystemExit(f"error: {checkpoint} was not found on {endpoint}: check the id, or set HF_TOKEN to a "
                         "token that may read it if it is private.")
    except RevisionNotFoundError:
        raise SystemExit(f"error: {checkpoint} has no revision {revision!r} on {endpoint}: pass a branch, tag or "
                         "commit that exists.")
    except LocalEntryNotFoundError:
        raise SystemExit(f"error: cannot reach {endpoint} to download {checkpoint}{at}, and it is not in the cache "
                         f"({constants.HF_HUB_CACHE}): check the network, HF_ENDPOINT and HF_HUB_OFFLINE, "
                         "or pass a local folder.")
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        detail = error.server_message or str(error).splitlines()[0]
        if status == 401:
            raise SystemExit(f"error: {endpoint} refused HF_TOKEN ({status}: {detail}) for {checkpoint}: set HF_TOKEN "
                             "to a valid token, or unset it for a public repository.")
        raise SystemExit(f"error: downloading {checkpoint} from {endpoint} failed ({status}: {detail}).")
    except OSError as error:  # disk full, a size check that failed, a proxy that refused
        raise SystemExit(f"error: downloading {checkpoint} from {endpoint} failed: {error}".splitlines()[0])
    return folder, commit
