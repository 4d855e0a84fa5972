#!/usr/bin/env bash
# What observability costs the whole local stack per request: the stack as the model declares it
# ("on": Prometheus scraping every sidecar, the apps, Cassandra's, Kafka's and Keycloak's metrics
# fronts, and traces from every sidecar and service through the collector to Jaeger) against the
# same model without its `metrics` and `tracing` blocks ("off"), alternated on/off/on/off on the
# `local` stack, each arm brought up with `./trellis up` and loaded with the same write-heavy run.
# The access logs and the data stores' audit logs are the audit trail and stay on in both arms.
#
#   bash load-tests/bench/observability-cost.sh [pairs=2]
#
# Needs the local stack up (it changes the stack's model and restores it). Prints one line per run:
# arm, report dir, load average, stack total CPU-ms per request, and the components that exist only
# when observability is on.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
pairs="${1:-2}"
cfg=infra/local/Pulumi.local.yaml
off="$PWD/.trellis/observability-off.yaml"
# The model without `metrics:` and `tracing:` (and orders-api's app metrics, which need a scraper).
sed -e '/^    metrics: { port: http, path: \/metrics }/d' -e '/^metrics:$/,/^  sampling: /d' trellis.yaml >"$off"
backup="$PWD/.trellis/Pulumi.local.yaml.bench-orig"
cp "$cfg" "$backup"
restore() { mv "$backup" "$cfg"; }
trap restore EXIT

run_arm() {
  local arm="$1" model="$2"
  sed -i "s#^  trellis-local:model: .*#  trellis-local:model: ${model}#" "$cfg"
  ./trellis up >/dev/null 2>&1 || { echo "up failed for arm $arm" >&2; exit 1; }
  sleep 30
  ./trellis load --scenario write-heavy --rps 100 --duration 20s --warmup 5s --no-abort >/dev/null 2>&1 || true
  local load; load="$(cut -d' ' -f1-3 /proc/loadavg)"
  local out; out="$(./trellis load --scenario write-heavy --rps 100 --duration 40s --warmup 5s --no-abort 2>&1 || true)"
  local dir; dir="$(ls -dt reports/*/ | head -1)"
  node -e '
    const r = require(process.argv[1] + "cpu.json");
    const obs = ["prometheus", "otel-collector", "otel-collector-front", "jaeger", "cassandra-metrics", "kafka-metrics", "keycloak-metrics"];
    const total = r.rows.reduce((n, x) => n + x.msPerRequest, 0);
    const own = r.rows.filter((x) => obs.some((o) => x.component.startsWith(o)));
    const apps = r.rows.filter((x) => ["orders-api", "orders-writer", "ledger"].includes(x.component));
    const sidecars = r.rows.filter((x) => x.component.endsWith("-sidecar"));
    const sum = (a) => a.reduce((n, x) => n + x.msPerRequest, 0).toFixed(3);
    console.log([process.argv[2], process.argv[1], "load " + process.argv[3], "requests " + r.requests,
      "total " + total.toFixed(3), "observability processes " + sum(own), "apps " + sum(apps), "sidecars " + sum(sidecars),
      own.map((x) => x.component + "=" + x.msPerRequest.toFixed(3)).join(",")].join(" | "));
  ' "$PWD/$dir" "$arm" "$load"
}

for ((i = 0; i < pairs; i++)); do
  run_arm on ../../trellis.yaml
  run_arm off "$off"
done
restore
trap - EXIT
./trellis up >/dev/null 2>&1
