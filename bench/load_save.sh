#!/usr/bin/env bash
# load and save of nginx (../shared/images/nginx.tar.gz), berthd against dockerd, side by side in
# one run, through the same docker CLI, alternating A B A B (so both see the same disk state).
# Reports medians and the ratio dockerd/berth (>1 = berth faster). Run as root after
# `cargo build --release --bins` and scripts/setup.sh.
#   bench/load_save.sh [RUNS]        BENCH_DIR=/some/fs picks the filesystem (default /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
img=${IMG:-../shared/images/nginx.tar.gz}
work=$(mktemp -d "${BENCH_DIR:-/tmp}/berth-bench.XXXXXX")
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
export DOCKER_CONFIG=$work/cfg
for _ in $(seq 300); do
  DOCKER_HOST=unix://$bsock docker version >/dev/null 2>&1 \
    && DOCKER_HOST=unix://$dsock docker version >/dev/null 2>&1 && break
  sleep 0.2
done
b() { DOCKER_HOST=unix://$bsock docker "$@"; }
d() { DOCKER_HOST=unix://$dsock docker "$@"; }
ms() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
: > "$work/load.b"; : > "$work/load.d"; : > "$work/save.b"; : > "$work/save.d"
# warm-up, then alternate
b load -q -i "$img" >/dev/null; d load -q -i "$img" >/dev/null
for i in $(seq "$runs"); do
  b rmi -f nginx:latest >/dev/null 2>&1 || true; ms b load -q -i "$img" >> "$work/load.b"
  d rmi -f nginx:latest >/dev/null 2>&1 || true; ms d load -q -i "$img" >> "$work/load.d"
done
for i in $(seq "$runs"); do
  ms b save -o "$work/b.tar" nginx >> "$work/save.b"; rm -f "$work/b.tar"
  ms d save -o "$work/d.tar" nginx >> "$work/save.d"; rm -f "$work/d.tar"
done
for what in load save; do
  mb=$(median < "$work/$what.b"); md=$(median < "$work/$what.d")
  echo "$what $(basename "$img"): n=$runs, berth median ${mb} ms [$(tr '\n' ' ' < "$work/$what.b")]," \
    "dockerd median ${md} ms [$(tr '\n' ' ' < "$work/$what.d")], dockerd/berth = $(awk "BEGIN {printf \"%.2f\", $md/$mb}")x"
done
