#!/usr/bin/env bash
# The baseline: what a script does with the git CLI to update every environment's config.json
# in a release repository: clone, edit, commit, push a branch.
# Usage: git-cli-update.sh REMOTE_URL WORKDIR BRANCH IMAGE_TAG
set -euo pipefail
remote=$1
work=$2
branch=$3
tag=$4
rm -rf "$work"
git clone -q "$remote" "$work"
cd "$work"
git checkout -q -b "$branch"
for f in cluster-config/*/config.json; do
  sed -i -E "s/(\"imageTag\": )\"[^\"]*\"/\1\"$tag\"/" "$f"
done
git -c user.name=Bench -c user.email=bench@example.com commit -q -am "Update imageTag to $tag"
git push -q origin "$branch"
