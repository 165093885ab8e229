#!/usr/bin/env bash
# Fills .bench-kit/ (ignored by git) with what test/bench/device/run.sh needs on a machine that
# has no Node, no node_modules and no network: the repository's own Node 22, stripped and
# xz-compressed (node.xz); modules.tar.xz, every file and link that the bench loads, as pnpm
# installed them (test/bench/dist, Shardwise's packages' dist, the peers in node_modules: the
# list is test/bench/src/kit.ts's, in bench/files.txt); and the cold-start bundles prebuilt
# (bench/bundles). It builds first, so the kit holds whatever this checkout holds now: run it
# again after a change. It ends with the kit's smoke check in a copy of the tracked files in /tmp
# with the modules unpacked, run by the kit's node with no node on PATH, as the machine runs it.
#
#   bash test/bench/device/prepare.sh        # then carry .bench-kit (one path, about 40 MB)
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
kit=$root/.bench-kit
pnpm=(npx -y pnpm@12.4.2)
start=$(date +%s)

echo "== install and build (@shardwise/bench and every package it uses)"
"${pnpm[@]}" install --frozen-lockfile >/dev/null
"${pnpm[@]}" turbo run build --filter=@shardwise/bench... --output-logs=errors-only

node22=$(readlink -f node_modules/node/bin/node)
[ -x "$node22" ] || { echo "no Node 22 at node_modules/node/bin/node (pnpm install?)" >&2; exit 1; }
mkdir -p "$kit"

echo "== the bench kit ($kit/bench, $kit/modules.tar.xz)"
"$node22" test/bench/dist/kit.js "$kit/bench" "$root"
tar -cf - --owner=0 --group=0 -T "$kit/bench/files.txt" | xz -6 -T2 >"$kit/modules.tar.xz"
echo "modules.tar.xz: $(($(stat -c %s "$kit/modules.tar.xz") / 1024 / 1024)) MiB"

echo "== node ($kit/node.xz)"
# xz -9e takes minutes here, so a compressed binary is kept, by the checksum of its source, in
# the kit and in a cache that every checkout of this machine shares.
sum=$(sha256sum "$node22" | cut -d' ' -f1)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/shardwise-bench-kit
if [ -f "$kit/node.xz" ] && [ "$(cat "$kit/node.sha256" 2>/dev/null)" = "$sum" ]; then
  echo "unchanged ($("$node22" --version)), kept"
elif [ -f "$cache/node-$sum.xz" ]; then
  cp "$cache/node-$sum.xz" "$kit/node.xz"
  echo "$sum" >"$kit/node.sha256"
  echo "taken from $cache"
else
  rm -f "$kit/node.xz" "$kit/node.sha256"
  cp "$node22" "$kit/node"
  chmod u+w "$kit/node"
  strip "$kit/node"
  "$kit/node" --version >/dev/null
  xz -9e -T2 -f "$kit/node"
  echo "$sum" >"$kit/node.sha256"
  mkdir -p "$cache"
  cp "$kit/node.xz" "$cache/node-$sum.xz.tmp" && mv "$cache/node-$sum.xz.tmp" "$cache/node-$sum.xz"
fi

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' with uncommitted changes' || true)
echo "kit of commit $commit$dirty ($(git log -1 --format=%s 2>/dev/null | cut -c1-80)), built $(date -u '+%Y-%m-%d %H:%M UTC'), Node $("$node22" --version)" >"$kit/stamp.txt"

echo "== smoke check of the kit, as the machine runs it (tracked files in /tmp, no node on PATH)"
check=$(mktemp -d /tmp/shardwise-kit-check.XXXXXX)
trap 'rm -rf "$check"' EXIT
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$check"
xz -dc "$kit/modules.tar.xz" | tar -xf - -C "$check"
xz -dc "$kit/node.xz" >"$check/node"
chmod +x "$check/node"
(cd "$check" && env -i PATH=/usr/bin:/bin HOME="$check" ./node test/bench/dist/device-smoke.js --bundles "$kit/bench/bundles")

size=$(du -sb "$kit" | cut -f1)
echo "== $kit: $((size / 1024 / 1024)) MiB ($(cat "$kit/stamp.txt")); $(($(date +%s) - start)) s"
if [ "$size" -gt $((60 * 1024 * 1024)) ]; then
  echo "the kit is over 60 MiB: the device takes 64 MiB with the working tree" >&2
  exit 1
fi
