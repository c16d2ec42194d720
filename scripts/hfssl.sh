#!/usr/bin/env bash
# Set up (first run only) and run the hfssl command line: scripts/hfssl.sh <command> [options]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$HFSSL_VENV/bin/hfssl" "$@"
