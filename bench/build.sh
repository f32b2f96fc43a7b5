#!/usr/bin/env bash
# Builds: berthd against dockerd's legacy builder (DOCKER_BUILDKIT=0), side by side in one run,
# through the same docker CLI (and `berth build` against berthd, for the client's share):
#   1. cold: a 10-step Dockerfile on busybox (ENV, WORKDIR, COPY of a small tree, RUN, ARG,
#      LABEL, COPY, RUN, CMD) built with --no-cache, the image removed before every run;
#   2. cached: the same build again, every step from the cache (target: under 100 ms end to end).
# RUN steps use `--network none` (neither daemon has a bridge here: berthd runs with `-b none`,
# dockerd with `--bridge=none --iptables=false`), so no network setup is measured.
# Prints medians and ratios (>1 = berth faster). Run as root after scripts/setup.sh and
# `scripts/build.sh --release`.
# Both data roots live on one fresh ext4 filesystem (a loop-mounted image, FS=host to use the
# host's /tmp instead), as in registry.sh: the root filesystem's churned /tmp would otherwise
# hide both engines' cost behind the disk's.
#   bench/build.sh [RUNS]   (default 10; BIN=target/debug to try the script itself)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-10}
bin=${BIN:-target/release}
img=${IMG:-../shared/images/busybox.tar}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_dirs 4G
bsock=$work/berth.sock dsock=$work/docker.sock
export DOCKER_CONFIG=$work/cfg DOCKER_BUILDKIT=0
b() { DOCKER_HOST=unix://$bsock docker "$@"; }
d() { DOCKER_HOST=unix://$dsock docker "$@"; }

cleanup() {
  b rm -f $(b ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  d rm -f $(d ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  stop_pid "$work/berthd.pid"
  stop_pid "$work/docker.pid"
  bench_dirs_remove
}
trap cleanup EXIT

[ -f "$img" ] || { echo "no busybox archive at $img (set IMG=)" >&2; exit 1; }
[ -x "$bin/berthd" ] || { echo "build first: scripts/build.sh --release" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "hyperfine is missing: scripts/setup.sh" >&2; exit 1; }

echo '{}' > "$work/daemon.json"
"$bin/berthd" -H "unix://$bsock" --data-root "$roots/berth-root" --exec-root "$run/berth-exec" \
  --pidfile "$work/berthd.pid" --config-file "$work/daemon.json" -b none 2>"$work/berthd.log" &
dockerd -H "unix://$dsock" --data-root "$roots/docker-root" --exec-root "$run/docker-exec" \
  --pidfile "$work/docker.pid" --bridge=none --iptables=false --containerd-namespace=bench-build \
  >"$work/dockerd.log" 2>&1 &
for _ in $(seq 300); do
  b version >/dev/null 2>&1 && d version >/dev/null 2>&1 && break
  sleep 0.2
done
b load -q -i "$img" >/dev/null
d load -q -i "$img" >/dev/null

# The context: a small source tree, a config file, and the 10-step Dockerfile.
ctx=$work/ctx
mkdir -p "$ctx/src/lib"
for i in $(seq 20); do
  head -c $((i * 512)) /dev/urandom | base64 > "$ctx/src/lib/module$i.txt"
done
echo 'main' > "$ctx/src/main.txt"
echo 'mode=bench' > "$ctx/config.txt"
cat > "$ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ /app/src/
RUN mkdir -p /app/data && echo built > /app/data/marker && ls /app/src/lib | wc -l
ARG VERSION=1
LABEL org.example.bench=build version=$VERSION
COPY config.txt /app/
RUN cat /app/config.txt > /app/data/config && find /app/src -type f | sort > /app/data/list
CMD ["sh", "-c", "cat /app/data/marker"]
EOF
cat > "$ctx/.dockerignore" <<'EOF'
*.tmp
EOF

berth_cli=$bin/berth
build_args="--network none -t bench:build $ctx"
echo "== cold build of a 10-step Dockerfile (--no-cache, rmi before each run), n=$runs, medians"
hyperfine -w 1 -r "$runs" --export-json "$work/cold.json" \
  --prepare "DOCKER_HOST=unix://$bsock docker rmi -f bench:build >/dev/null 2>&1 || true; DOCKER_HOST=unix://$dsock docker rmi -f bench:build >/dev/null 2>&1 || true" \
  "DOCKER_HOST=unix://$bsock docker build --no-cache $build_args" \
  "DOCKER_HOST=unix://$dsock docker build --no-cache $build_args" \
  "DOCKER_HOST=unix://$bsock $berth_cli build --no-cache $build_args" >/dev/null

# Warm both caches, then rebuild: every step `Using cache`.
b build $build_args >/dev/null 2>&1
d build $build_args >/dev/null 2>&1
hits=$(b build $build_args 2>/dev/null | grep -c 'Using cache' || true)
dhits=$(d build $build_args 2>/dev/null | grep -c 'Using cache' || true)
echo "== cached rebuild (berthd: $hits steps from cache, dockerd: $dhits), n=$runs, medians"
hyperfine -w 2 -r "$runs" --export-json "$work/cached.json" \
  "DOCKER_HOST=unix://$bsock docker build $build_args" \
  "DOCKER_HOST=unix://$dsock docker build $build_args" \
  "DOCKER_HOST=unix://$bsock $berth_cli build $build_args" >/dev/null

python3 - "$work/cold.json" "$work/cached.json" <<'EOF'
import json, sys
for name, path in (("cold", sys.argv[1]), ("cached", sys.argv[2])):
    b, d, bb = [x["median"] * 1000 for x in json.load(open(path))["results"]]
    print(f"  {name:6}: berthd {b:8.1f} ms   dockerd {d:8.1f} ms   dockerd/berthd {d / b:.2f}x"
          f"   (berth CLI -> berthd {bb:8.1f} ms)")
EOF
