#!/usr/bin/env bash
# Every benchmark on the GPU box, tables written to $OUT as it goes (a timeout keeps what is done).
# From the repository root, after bench/gpu/prepare_payload.sh --cell-type CELLTYPE:
#   PYTHONPATH=.gpu_payload/site:$PWD bash bench/gpu/run_all.sh CELLTYPE
# Environment: OUT (default bench/results/gpu), EPOCHS (default auto: fit the budget),
# BENCH_BUDGET_S (default 285 s; 3600 with BENCH_TINY), BENCH_TINY=1 (tiny settings: a CPU dry run).
set -euo pipefail
CELL=${1:?usage: run_all.sh mono|poly}
cd "$(dirname "$0")/../.."
export PYTHONPATH=${PYTHONPATH:-.gpu_payload/site:$PWD}
export OUT=${OUT:-bench/results/gpu}
PYTHON=${PYTHON:-python3}
ARGS=("$CELL" --out "$OUT" --epochs "${EPOCHS:-auto}")
if [[ -n "${BENCH_BUDGET_S:-}" ]]; then
  ARGS+=(--budget-s "$BENCH_BUDGET_S")
fi
if [[ "${BENCH_TINY:-0}" == "1" ]]; then
  ARGS+=(--tiny)
fi
exec "$PYTHON" -m bench.gpu.run_all "${ARGS[@]}"
