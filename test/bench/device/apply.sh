#!/usr/bin/env bash
# Back here, with the files that came back from the machine (run.sh's $OUT): puts their
# generated.md into this checkout's BENCHMARKS.md, as `pnpm bench` would, and formats it.
#   bash test/bench/device/apply.sh <folder holding generated.md>
set -euo pipefail
from=${1:?usage: apply.sh <folder holding generated.md>}
cd "$(dirname "$0")/../../.."
[ -s "$from/generated.md" ] || { echo "no generated.md in $from" >&2; exit 1; }
if grep -q '^Unfinished: \|^Not run, ' "$from/generated.md"; then
  echo "note: the run did not finish every step:" >&2
  grep '^Unfinished: \|^Not run, ' "$from/generated.md" >&2
fi
bash test/bench/device/splice.sh "$from/generated.md" BENCHMARKS.md >BENCHMARKS.md.new
mv BENCHMARKS.md.new BENCHMARKS.md
npx -y pnpm@12.4.2 exec biome format --write BENCHMARKS.md >/dev/null
echo "BENCHMARKS.md: generated part from $from/generated.md ($(head -c 160 "$from/generated.md")...)"
