#!/usr/bin/env bash
# Fuzzes a running gateway from its own OpenAPI document with schemathesis:
# fails on any 5xx or any response that does not match the document.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug/hookgate
port=${SCHEMATHESIS_PORT:-18931}
admin=schemathesis-admin-key-0123
data=$(mktemp -d)
"$bin" serve --listen "127.0.0.1:${port}" --data-dir "$data" --admin-key "$admin" \
  --allow-private-destinations >"$data/gateway.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:${port}/readyz" >/dev/null && break
  sleep 0.1
done
base="http://127.0.0.1:${port}"
org_key=$(curl -sf -X POST "$base/v1/organizations" -H "Authorization: Bearer $admin" \
  -H 'content-type: application/json' -d '{"name":"fuzz"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["apiKey"])')

checks="not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
examples=${SCHEMATHESIS_EXAMPLES:-40}
# Organization routes with the organization's key, operator routes with the admin key.
schemathesis run "$base/openapi.json" --checks "$checks" -n "$examples" --generation-deterministic \
  -H "Authorization: Bearer $org_key" --exclude-path-regex '^/v1/(organizations|plugins)'
schemathesis run "$base/openapi.json" --checks "$checks" -n "$examples" --generation-deterministic \
  -H "Authorization: Bearer $admin" --include-path-regex '^/v1/(organizations|plugins)' \
  --exclude-method PUT  # plugin upload: application/wasm bodies, covered by the Rust tests
if grep -q 'panicked' "$data/gateway.log"; then
  echo "the gateway panicked during the run:"; grep -B2 -A5 panicked "$data/gateway.log"; exit 1
fi
echo "schemathesis: no server errors, every response matches the OpenAPI document"
