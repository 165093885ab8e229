#!/usr/bin/env bash
# Prints BENCHMARKS.md (the second argument) with the part between its bench markers replaced by
# the generated part in the first argument, as `pnpm bench` writes it.
#   bash test/bench/device/splice.sh generated.md BENCHMARKS.md >new.md
set -euo pipefail
part=$1
file=$2
grep -q '<!-- bench:begin -->' "$file" && grep -q '<!-- bench:end -->' "$file" ||
  { echo "$file lacks the <!-- bench:begin --> and <!-- bench:end --> markers" >&2; exit 1; }
awk -v part="$part" '
  /<!-- bench:begin -->/ { print; while ((getline line < part) > 0) print line; skip = 1; next }
  /<!-- bench:end -->/ { skip = 0 }
  !skip { print }
' "$file"
