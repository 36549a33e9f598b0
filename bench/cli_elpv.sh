#!/usr/bin/env bash
# The README's CPU check of the command line on ELPV mono: train a detector with a short schedule,
# then evaluate it on every held-out normal and defective mono cell. Writes the commands' own output
# (progress bars stripped) to bench/results/cli-elpv-mono.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/results/cli-elpv-mono.txt
model=${TMPDIR:-/tmp}/elpv-mono-se.adn
export OMP_WAIT_POLICY=PASSIVE
strip() { tr '\r' '\n' | grep -v -E '(‰|img)/s|^\s*$' || true; }
{
  echo "# adn train + adn eval on ELPV mono ($(date -u '+%Y-%m-%d %H:%M UTC'); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs)"
  echo '$ adn train --elpv mono --variant se --backbone mobilenet_v2 --preset fast --epochs 3 --cache-views 4 --test-views 4 --out '"$model"
  start=$(date +%s)
  .venv/bin/adn train --elpv mono --variant se --backbone mobilenet_v2 --preset fast --epochs 3 \
    --cache-views 4 --test-views 4 --out "$model" 2>&1 | strip
  echo "(train wall time: $(( $(date +%s) - start )) s)"
  echo '$ adn eval --model '"$model"' --elpv mono'
  start=$(date +%s)
  .venv/bin/adn eval --model "$model" --elpv mono 2>&1 | strip
  echo "(eval wall time: $(( $(date +%s) - start )) s)"
} > "$out"
cat "$out"
