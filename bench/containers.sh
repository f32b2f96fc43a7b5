#!/usr/bin/env bash
# Container start-up and footprint: berthd against dockerd and podman, side by side in one run.
#   1. `run --rm --network none busybox true` end to end: the docker CLI against berthd, `berth`
#      against berthd, the docker CLI against dockerd, podman (hyperfine, alternating, warmed up).
#   2. 100 x `run -d --network none busybox sleep 60`, then `rm -f` of all: containers per second.
#   3. RSS of one container's shim (berth shim / containerd-shim-runc-v2 / conmon) and of the idle
#      daemons (berthd / dockerd + containerd).
# Prints medians and ratios (>1 = berth faster or smaller). Run as root after scripts/setup.sh,
# `apt-get install podman` and `scripts/build.sh --release` (berth-shim linked statically).
#   bench/containers.sh [RUNS] [N]      (defaults 15 runs, N = 100 containers)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
n=${2:-100}
img=${IMG:-../shared/images/busybox.tar}
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
# Exec roots on tmpfs (/run), as both daemons have by default.
run=$(mktemp -d /run/berth-bench.XXXXXX)
bsock=$work/berth.sock dsock=$work/docker.sock
podman_cmd=(env -u DOCKER_CONFIG podman --root "$work/podman-root" --runroot "$work/podman-run" --tmpdir "$work/podman-tmp"
  --cgroup-manager=cgroupfs --events-backend=file)
cleanup() {
  DOCKER_HOST=unix://$bsock docker rm -f $(DOCKER_HOST=unix://$bsock docker ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  DOCKER_HOST=unix://$dsock docker rm -f $(DOCKER_HOST=unix://$dsock docker ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  "${podman_cmd[@]}" rm -af >/dev/null 2>&1 || true
  [ -f "$work/berthd.pid" ] && kill "$(cat "$work/berthd.pid")" 2>/dev/null || true
  [ -f "$work/docker.pid" ] && kill "$(cat "$work/docker.pid")" 2>/dev/null || true
  sleep 3
  umount -R "$work/podman-root/overlay" 2>/dev/null || true
  rm -rf "$work" "$run" 2>/dev/null || true
}
trap cleanup EXIT
[ -f "$img" ] || { echo "no image archive at $img (set IMG=)" >&2; exit 1; }
echo '{}' > "$work/daemon.json"
target/release/berthd -H "unix://$bsock" --data-root "$work/berth-root" --exec-root "$run/berth-exec" \
  --pidfile "$work/berthd.pid" --config-file "$work/daemon.json" 2>"$work/berthd.log" &
dockerd -H "unix://$dsock" --data-root "$work/docker-root" --exec-root "$run/docker-exec" \
  --pidfile "$work/docker.pid" --bridge=none --iptables=false --containerd-namespace=bench \
  >"$work/dockerd.log" 2>&1 &
export DOCKER_CONFIG=$work/cfg
for _ in $(seq 300); do
  DOCKER_HOST=unix://$bsock docker version >/dev/null 2>&1 \
    && DOCKER_HOST=unix://$dsock docker version >/dev/null 2>&1 && break
  sleep 0.2
done
b() { DOCKER_HOST=unix://$bsock docker "$@"; }
bb() { target/release/berth -H "unix://$bsock" "$@"; }
d() { DOCKER_HOST=unix://$dsock docker "$@"; }
p() { "${podman_cmd[@]}" "$@"; }
b load -q -i "$img" >/dev/null
d load -q -i "$img" >/dev/null
have_podman=0
if command -v podman >/dev/null && p load -q -i "$img" >/dev/null 2>&1; then have_podman=1; fi
podman_tag=busybox:latest
[ $have_podman = 1 ] && podman_tag=$(p images --format '{{.Repository}}:{{.Tag}}' | grep busybox | head -1)

echo "== run --rm --network none busybox true (n=$runs, medians)"
cmds=(
  "DOCKER_HOST=unix://$bsock DOCKER_CONFIG=$work/cfg docker run --rm --network none busybox true"
  "target/release/berth -H unix://$bsock run --rm --network none busybox true"
  "DOCKER_HOST=unix://$dsock DOCKER_CONFIG=$work/cfg docker run --rm --network none busybox true"
)
names=(docker-cli/berthd berth/berthd docker-cli/dockerd)
if [ $have_podman = 1 ]; then
  cmds+=("${podman_cmd[*]} run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 $podman_tag true")
  names+=(podman)
fi
hyperfine -w 3 -r "$runs" --export-json "$work/run.json" "${cmds[@]}" >/dev/null
python3 - "$work/run.json" "${names[@]}" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
names = sys.argv[2:]
med = {n: x["median"] * 1000 for n, x in zip(names, r)}
for n in names:
    print(f"  {n:18} {med[n]:7.1f} ms")
d = med["docker-cli/dockerd"]
for n in ("docker-cli/berthd", "berth/berthd"):
    print(f"  dockerd / {n}: {d / med[n]:.1f}x")
if "podman" in med:
    for n in ("docker-cli/berthd", "berth/berthd"):
        print(f"  podman / {n}: {med['podman'] / med[n]:.1f}x")
EOF

echo "== $n x run -d busybox sleep 60, then rm -f (containers per second)"
rate() { # name, run-command prefix...
  local name=$1; shift
  local t0 t1 t2
  t0=$(date +%s%N)
  local extra=() image=busybox
  # podman here: no systemd, and root lacks CAP_SYS_RESOURCE, so keep rlimits below the host's.
  [ "$name" = podman ] && extra=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096) && image=$podman_tag
  for _ in $(seq "$n"); do "$@" run -d --network none "${extra[@]}" "$image" sleep 60 >/dev/null; done
  t1=$(date +%s%N)
  # shellcheck disable=SC2046
  # podman's `rm -f` first waits the stop timeout; `-t 0` kills at once, as docker's does.
  local rmx=()
  [ "$name" = podman ] && rmx=(-t 0)
  "$@" rm -f "${rmx[@]}" $("$@" ps -aq) >/dev/null
  t2=$(date +%s%N)
  awk -v n="$n" -v a="$t0" -v b="$t1" -v c="$t2" -v name="$name" \
    'BEGIN { printf "  %-18s run -d: %6.1f/s   rm -f: %6.1f/s\n", name, n / ((b - a) / 1e9), n / ((c - b) / 1e9) }'
}
rate docker-cli/berthd b
rate berth/berthd bb
rate docker-cli/dockerd d
[ $have_podman = 1 ] && rate podman p

echo "== RSS"
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
b run -d --name rss --network none busybox sleep 300 >/dev/null
d run -d --name rss --network none busybox sleep 300 >/dev/null
bid=$(b inspect -f '{{.Id}}' rss)
bshim=$(cat "$run/berth-exec/containers/$bid/shim.pid" 2>/dev/null \
  || cat "$run"/berth-exec/c/"${bid:0:12}"/shim.pid)
dshim=$(pgrep -f "containerd-shim-runc-v2 -namespace bench" | head -1)
echo "  shim: berth $(rss "$bshim") MB, containerd-shim-runc-v2 $(rss "$dshim") MB"
if [ $have_podman = 1 ]; then
  p run -d --name rss --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 "$podman_tag" sleep 300 >/dev/null
  conmon=$(pgrep -f "conmon .*-n rss" | head -1)
  echo "  shim: conmon $(rss "$conmon") MB"
fi
b rm -f rss >/dev/null; d rm -f rss >/dev/null
[ $have_podman = 1 ] && p rm -f -t 0 rss >/dev/null
sleep 1
ctd=$(pgrep -f "containerd --config $run/docker-exec" | head -1 || true)
[ -n "$ctd" ] || ctd=$(pgrep -x containerd | head -1)
echo "  idle daemon: berthd $(rss "$(cat "$work/berthd.pid")") MB," \
  "dockerd $(rss "$(cat "$work/docker.pid")") MB + containerd $(rss "$ctd") MB"
