#!/usr/bin/env bash
# Build .gpu_payload/ (git-ignored) for the GPU box: packages it lacks + ELPV cells of one type.
# usage: bench/gpu/prepare_payload.sh [--cell-type mono|poly] [--max-mb 60]
# Then carry .gpu_payload to the box and run bench/gpu/run_all.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-.venv/bin/python}
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qxF '/.gpu_payload/' "$EXCLUDE" 2>/dev/null || echo '/.gpu_payload/' >> "$EXCLUDE"
exec "$PYTHON" -m bench.gpu.payload "$@"
