#!/usr/bin/env bash
# Create .venv if missing and install hfssl (editable, with test extras) into it; reinstall
# only when pyproject.toml changed. Sourced by scripts/hfssl.sh and scripts/test.sh.
# Uses pip on purpose: uv/poetry ignore this machine's local torch wheels and its torch cap.
set -euo pipefail
HFSSL_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HFSSL_VENV="${HFSSL_VENV:-$HFSSL_ROOT/.venv}"
HFSSL_PYTHON="${HFSSL_PYTHON:-python3}"
if [ ! -x "$HFSSL_VENV/bin/python" ]; then
  echo "[hfssl] creating virtual environment in $HFSSL_VENV" >&2
  "$HFSSL_PYTHON" -m venv "$HFSSL_VENV"
fi
_stamp="$HFSSL_VENV/.hfssl-install-stamp"
_want="$(sha256sum "$HFSSL_ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ "$(cat "$_stamp" 2>/dev/null || true)" != "$_want" ]; then
  echo "[hfssl] installing hfssl and its dependencies (first run takes a few minutes)" >&2
  "$HFSSL_VENV/bin/python" -m pip install -q --upgrade pip
  "$HFSSL_VENV/bin/python" -m pip install -q -e "$HFSSL_ROOT[test,dev]"
  echo "$_want" > "$_stamp"
fi
export PATH="$HFSSL_VENV/bin:$PATH"
