#!/usr/bin/env bash
# Builds the release-repo benchmark, generates a 5,000-commit repository with 100 environments and
# runs both sides. Usage: bench/gitops/run.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build}
rounds=${2:-5}
ninja -C "$build" release_repo_bench >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$here/make-release-repo.sh" "$tmp/repos/release.git" 5000 100
"$build/bench/release_repo_bench" "$tmp/repos/release.git" "$here" "$rounds"
