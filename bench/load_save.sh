#!/usr/bin/env bash
# load and save of nginx (../shared/images/nginx.tar.gz), berthd against dockerd, side by side in
# one run, through the same docker CLI. Reports medians and the ratio dockerd/berth (>1 = berth
# faster). Run as root after `cargo build --release --bins` and scripts/setup.sh.
#   bench/load_save.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
img=${IMG:-../shared/images/nginx.tar.gz}
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
bsock=$work/berth.sock dsock=$work/docker.sock
cleanup() {
  [ -f "$work/berthd.pid" ] && kill "$(cat "$work/berthd.pid")" 2>/dev/null || true
  [ -f "$work/docker.pid" ] && kill "$(cat "$work/docker.pid")" 2>/dev/null || true
  sleep 2; rm -rf "$work" || true
}
trap cleanup EXIT
echo '{}' > "$work/daemon.json"
target/release/berthd -H "unix://$bsock" --data-root "$work/berth-root" --exec-root "$work/berth-exec" \
  --pidfile "$work/berthd.pid" --config-file "$work/daemon.json" 2>"$work/berthd.log" &
dockerd -H "unix://$dsock" --data-root "$work/docker-root" --exec-root "$work/docker-exec" \
  --pidfile "$work/docker.pid" --bridge=none --iptables=false --containerd-namespace=bench \
  >"$work/dockerd.log" 2>&1 &
for _ in $(seq 300); do
  DOCKER_HOST=unix://$bsock docker version >/dev/null 2>&1 && DOCKER_HOST=unix://$dsock docker version >/dev/null 2>&1 && break
  sleep 0.2
done
export DOCKER_CONFIG=$work/cfg
B="DOCKER_HOST=unix://$bsock docker" D="DOCKER_HOST=unix://$dsock docker"
echo "# load $(basename "$img") (after rmi), $runs runs each, alternating"
hyperfine -N --style basic -w 1 -r "$runs" --export-json "$work/load.json" \
  -n berth -p "env $B rmi -f nginx:latest >/dev/null 2>&1 || true" "env $B load -q -i $img" \
  -n dockerd -p "env $D rmi -f nginx:latest >/dev/null 2>&1 || true" "env $D load -q -i $img" \
  2>&1 | grep -vE '^\s*$' || true
env $B load -q -i "$img" >/dev/null 2>&1 || true
env $D load -q -i "$img" >/dev/null 2>&1 || true
echo "# save nginx to a file, $runs runs each"
hyperfine -N --style basic -w 1 -r "$runs" --export-json "$work/save.json" \
  -n berth "env $B save -o $work/b.tar nginx" \
  -n dockerd "env $D save -o $work/d.tar nginx" 2>&1 | grep -vE '^\s*$' || true
python3 - "$work/load.json" "$work/save.json" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = {x["command"]: x["median"] for x in json.load(open(path))["results"]}
    name = path.rsplit("/", 1)[1].split(".")[0]
    print(f"{name}: berth {r['berth']*1000:.0f} ms, dockerd {r['dockerd']*1000:.0f} ms, "
          f"dockerd/berth = {r['dockerd']/r['berth']:.2f}x")
PY
