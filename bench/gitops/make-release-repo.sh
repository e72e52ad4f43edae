#!/usr/bin/env bash
# Generates a bare release repository for the benchmarks: COMMITS commits on main, ENVS
# environment folders cluster-config/envNN/config.json (written with git fast-import, so it takes
# seconds). Usage: make-release-repo.sh DIR [COMMITS=5000] [ENVS=100]
set -euo pipefail
dir=$1
commits=${2:-5000}
envs=${3:-100}
rm -rf "$dir"
git init -q --bare --initial-branch=main "$dir"
{
  t=1700000000
  # Commit 1: every environment's config.
  printf 'commit refs/heads/main\nmark :1\ncommitter Seed <seed@example.com> %d +0000\ndata 16\ninitial configs\n' "$t"
  for ((e = 0; e < envs; e++)); do
    body=$(printf '{\n  "imageTag": "v1.0.0",\n  "replicas": 2,\n  "env": "env%02d",\n  "resources": {\n    "cpu": "250m",\n    "memory": "256Mi"\n  }\n}\n' "$e")
    printf 'M 100644 inline cluster-config/env%02d/config.json\ndata %d\n%s\n' "$e" "$((${#body} + 1))" "$body"
  done
  # Then history: each commit bumps one environment's build number.
  for ((c = 2; c <= commits; c++)); do
    e=$((c % envs))
    msg="env$(printf '%02d' "$e"): build $c"
    body=$(printf '{\n  "imageTag": "v1.0.%d",\n  "replicas": 2,\n  "env": "env%02d",\n  "resources": {\n    "cpu": "250m",\n    "memory": "256Mi"\n  }\n}\n' "$c" "$e")
    printf 'commit refs/heads/main\nmark :%d\ncommitter Seed <seed@example.com> %d +0000\ndata %d\n%s\nfrom :%d\n' \
      "$c" "$((t + c))" "${#msg}" "$msg" "$((c - 1))"
    printf 'M 100644 inline cluster-config/env%02d/config.json\ndata %d\n%s\n' "$e" "$((${#body} + 1))" "$body"
  done
} | git -C "$dir" fast-import --quiet
git -C "$dir" gc -q --aggressive 2>/dev/null || git -C "$dir" gc -q
echo "$dir: $(git -C "$dir" rev-list --count main) commits, $(git -C "$dir" ls-tree -r --name-only main | wc -l) files"
