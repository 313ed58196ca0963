#!/usr/bin/env sh
# Makes .venv/ (project-local) with exactly models/requirements.txt; does nothing when it is already there for the
# same requirements (a stamp holds their hash), so reruns are fast. pip's own cache makes a rebuild cheap too.
set -eu
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
stamp=.venv/requirements.sha256
wanted=$(sha256sum models/requirements.txt | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
echo "making .venv with models/requirements.txt ($($python --version))"
$python -m venv .venv
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r models/requirements.txt
echo "$wanted" > "$stamp"
