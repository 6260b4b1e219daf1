#!/usr/bin/env bash
# crabbox GitHub Action, step "down": disconnect and release the crew that
# $CRABBOX_MANIFEST names. Run it under `if: always()` so a failed job never
# leaves boxes (and their bills) behind.
set -euo pipefail
: "${CRABBOX_MANIFEST:?set CRABBOX_MANIFEST to the crew file}"
root=$(cd "$(dirname "$0")/.." && pwd)
exec deno run --allow-all --config "$root/deno.json" "$root/cli.ts" crew down -f "$CRABBOX_MANIFEST"
