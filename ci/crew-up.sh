#!/usr/bin/env bash
# crabbox GitHub Action, step "up": `crabbox crew up -f $CRABBOX_MANIFEST`, then
# (unless CRABBOX_CONNECT=false) the crew's SSH-mesh daemons, whose
# CRABBOX_CREW_<PEER>_<PORT>=127.0.0.1:<port> lines are appended to $GITHUB_ENV
# so later steps of the job see them. Needs deno on PATH (setup-deno).
set -euo pipefail
: "${CRABBOX_MANIFEST:?set CRABBOX_MANIFEST to the crew file}"
root=$(cd "$(dirname "$0")/.." && pwd)
env_file=${GITHUB_ENV:-/dev/null}

args=(crew up -f "$CRABBOX_MANIFEST")
case ${CRABBOX_CONNECT:-true} in
true) args+=(--connect) ;;
false) ;;
*)
  echo "crabbox-action: connect must be true or false, not '${CRABBOX_CONNECT}'" >&2
  exit 2
  ;;
esac

out=$(deno run --allow-all --config "$root/deno.json" "$root/cli.ts" "${args[@]}")
while IFS= read -r line; do
  [ -n "$line" ] || continue
  if [[ $line =~ ^export\ (CRABBOX_[A-Z0-9_]+=[0-9.:]+)$ ]]; then
    printf '%s\n' "${BASH_REMATCH[1]}" >>"$env_file"
    printf '%s\n' "${BASH_REMATCH[1]}"
  else
    echo "crabbox-action: unexpected output from crew up: $line" >&2
    exit 1
  fi
done <<<"$out"
