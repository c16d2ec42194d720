#!/usr/bin/env bash
# Set up (first run only) and run the default test suite (slow tests excluded; add -m slow
# to run them). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$HFSSL_ROOT"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HFSSL_DISABLE_PROGRESS_BARS=1
exec "$HFSSL_VENV/bin/python" -m pytest -q -n 2 --durations=15 "$@"
