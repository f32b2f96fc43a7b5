#!/usr/bin/env bash
# Distribution: berthd against dockerd, side by side in one run, through the same docker CLI.
#   1. pull of nginx from a loopback registry (Debian's docker-registry) with a cold store:
#      `rmi` of the image before every run, for both engines (berth keeps no layer blobs of a
#      removed image; dockerd's containerd-less graph driver neither).
#   2. push of nginx to an empty registry: a fresh registry (new root) before every run.
# Prints medians and ratios (>1 = berth faster). Neither daemon needs a network here: berthd runs
# with `-b none`, dockerd with `--bridge=none --iptables=false`. Run as root after
# scripts/setup.sh and `scripts/build.sh --release`.
# Both data roots live on one fresh ext4 filesystem (a loop-mounted image, FS=host to use the
# host's /tmp instead): on these VMs the root filesystem has no journal and its block groups
# under /tmp are churned by builds and tests, so ext4 skips "recently deleted" inodes on every
# create and a file costs ~0.5 ms — which hides both engines' own cost behind the disk's.
#   bench/registry.sh [RUNS]   (default 7; BIN=target/debug to try the script itself)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-7}
img=${IMG:-../shared/images/nginx.tar.gz}
bin=${BIN:-target/release}
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_dirs 8G
bsock=$work/berth.sock dsock=$work/docker.sock
export DOCKER_CONFIG=$work/cfg
b() { DOCKER_HOST=unix://$bsock docker "$@"; }
d() { DOCKER_HOST=unix://$dsock docker "$@"; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port

# (Re)starts the registry on $port with an empty root; its pid goes to $work/registry.pid.
fresh_registry() {
  stop_pid "$work/registry.pid"
  rm -rf "$work/registry"
  mkdir -p "$work/registry"
  cat > "$work/registry.yml" <<EOF
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}}
http: {addr: $reg}
EOF
  docker-registry serve "$work/registry.yml" >/dev/null 2>&1 &
  echo $! > "$work/registry.pid"
  for _ in $(seq 100); do curl -sf "http://$reg/v2/" >/dev/null && return 0; sleep 0.1; done
  echo "registry did not start" >&2
  exit 1
}
cleanup() {
  stop_pid "$work/berthd.pid"
  stop_pid "$work/docker.pid"
  stop_pid "$work/registry.pid"
  bench_dirs_remove
}
trap cleanup EXIT

[ -f "$img" ] || { echo "no image archive at $img (set IMG=)" >&2; exit 1; }
command -v docker-registry >/dev/null || { echo "docker-registry is missing: scripts/setup.sh" >&2; exit 1; }
[ -x "$bin/berthd" ] || { echo "build first: scripts/build.sh --release" >&2; exit 1; }

echo '{}' > "$work/daemon.json"
"$bin/berthd" -H "unix://$bsock" --data-root "$roots/berth-root" --exec-root "$run/berth-exec" \
  --pidfile "$work/berthd.pid" --config-file "$work/daemon.json" -b none 2>"$work/berthd.log" &
dockerd -H "unix://$dsock" --data-root "$roots/docker-root" --exec-root "$run/docker-exec" \
  --pidfile "$work/docker.pid" --bridge=none --iptables=false --containerd-namespace=bench-reg \
  >"$work/dockerd.log" 2>&1 &
for _ in $(seq 300); do
  b version >/dev/null 2>&1 && d version >/dev/null 2>&1 && break
  sleep 0.2
done

# The registry holds library/nginx for the pulls.
fresh_registry
gunzip -c "$img" > "$work/nginx.tar"
skopeo --insecure-policy copy -q --dest-tls-verify=false "docker-archive:$work/nginx.tar" \
  "docker://$reg/library/nginx:latest"

echo "== pull $reg/library/nginx, cold store (rmi before each run), n=$runs, medians"
hyperfine -w 1 -r "$runs" --export-json "$work/pull.json" \
  --prepare "DOCKER_HOST=unix://$bsock docker rmi -f $reg/library/nginx >/dev/null 2>&1 || true; DOCKER_HOST=unix://$dsock docker rmi -f $reg/library/nginx >/dev/null 2>&1 || true" \
  "DOCKER_HOST=unix://$bsock docker pull -q $reg/library/nginx" \
  "DOCKER_HOST=unix://$dsock docker pull -q $reg/library/nginx" >/dev/null

# Both engines push the image they pulled, to a registry emptied before each run.
b pull -q "$reg/library/nginx" >/dev/null
d pull -q "$reg/library/nginx" >/dev/null
echo "== push of nginx to an empty registry (fresh root before each run), n=$runs, medians"
# hyperfine runs these in bash (-S bash), which inherits exported functions.
export -f fresh_registry stop_pid
export work reg
hyperfine -S bash -w 1 -r "$runs" --export-json "$work/push.json" \
  --prepare "fresh_registry" \
  "DOCKER_HOST=unix://$bsock docker push -q $reg/library/nginx" \
  "DOCKER_HOST=unix://$dsock docker push -q $reg/library/nginx" >/dev/null

python3 - "$work/pull.json" "$work/push.json" <<'EOF'
import json, sys
for name, path in (("pull", sys.argv[1]), ("push", sys.argv[2])):
    b, d = [x["median"] * 1000 for x in json.load(open(path))["results"]]
    print(f"  {name}: berthd {b:8.1f} ms   dockerd {d:8.1f} ms   dockerd/berthd {d / b:.2f}x")
EOF
