#!/usr/bin/env bash
# Generate a TypeScript client from the API's OpenAPI document (`python -m backend openapi`) with the pinned
# openapi-typescript, then compile the typed student journey (src/journey.ts) against it with `tsc --strict`.
# A document change that breaks clients written against it fails here. Run from anywhere; .ci/run runs it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"

cd "$here"
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
(cd "$root" && ENVIRONMENT=test "$python" -m backend openapi) > openapi.json
npx --no-install openapi-typescript openapi.json --output src/api.d.ts --silent
npx --no-install tsc --strict --noEmit
echo "TypeScript client: generated from the OpenAPI document, journey compiles with tsc --strict"
