#!/usr/bin/env bash
# Networking: berthd against dockerd, side by side in one run.
#   1. Time network setup adds to `run --rm busybox true`: the default bridge minus
#      `--network none`, the docker CLI against berthd and against dockerd (hyperfine, warmed up,
#      medians).
#   2. TCP throughput with iperf3 (the host's binary and its libraries bind-mounted read-only
#      into a busybox container): container → container on the default bridge, and host → a
#      published port, on 127.0.0.1 and on the host's own address. MB/s, medians of REPS runs,
#      the two engines alternating.
# Prints medians and ratios (>1 = berth faster). Each daemon gets a default bridge of its own
# (BERTH_BIP / DOCKER_BIP, so neither touches docker0 nor 172.17); dockerd keeps its defaults
# otherwise (iptables, userland proxy for 127.0.0.1). Run as root after scripts/setup.sh,
# `apt-get install iperf3` and `scripts/build.sh --release`.
#   bench/network.sh [RUNS] [SECONDS] [REPS]   (defaults: 15 runs, 5 s per iperf3 run, 3 reps)
#   (BIN=target/debug to try the script itself without a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-15}
secs=${2:-5}
reps=${3:-3}
img=${IMG:-../shared/images/busybox.tar}
bin=${BIN:-target/release}
berth_bip=${BERTH_BIP:-10.251.0.1/24}
docker_bip=${DOCKER_BIP:-10.252.0.1/24}
bbr=bbench$$ dbr=dbench$$
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
# Exec roots on tmpfs (/run), as both daemons have by default.
run=$(mktemp -d /run/berth-bench.XXXXXX)
bsock=$work/berth.sock dsock=$work/docker.sock
export DOCKER_CONFIG=$work/cfg
b() { DOCKER_HOST=unix://$bsock docker "$@"; }
d() { DOCKER_HOST=unix://$dsock docker "$@"; }

# Stops a daemon by its pid file and waits (up to 20 s) until it is gone.
stop_pid() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
}
cleanup() {
  # shellcheck disable=SC2046
  b rm -f $(b ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  # shellcheck disable=SC2046
  d rm -f $(d ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  stop_pid "$work/berthd.pid"
  stop_pid "$work/docker.pid"
  # dockerd leaves its rules for its bridge behind (as it does for docker0); remove exactly those.
  for t in filter nat; do
    iptables -t "$t" -S 2>/dev/null | grep -w -- "$dbr" | sed 's/^-A /-D /' |
      while read -ra rule; do iptables -t "$t" "${rule[@]}" 2>/dev/null || true; done
  done
  ip link del "$bbr" 2>/dev/null || true
  ip link del "$dbr" 2>/dev/null || true
  # dockerd makes its data root a private bind mount of itself.
  umount "$work/docker-root" 2>/dev/null || true
  rm -rf "$work" "$run" 2>/dev/null || true
}
trap cleanup EXIT

[ -f "$img" ] || { echo "no image archive at $img (set IMG=)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "iperf3 is missing: apt-get install iperf3" >&2; exit 1; }
[ -x "$bin/berthd" ] || { echo "build first: scripts/build.sh --release" >&2; exit 1; }
for net in "$berth_bip" "$docker_bip"; do
  if ip -4 route | grep -q "^${net%.*}\."; then
    echo "$net is routed here already; set BERTH_BIP / DOCKER_BIP" >&2
    exit 1
  fi
done

echo '{}' > "$work/daemon.json"
"$bin/berthd" -H "unix://$bsock" --data-root "$work/berth-root" --exec-root "$run/berth-exec" \
  --pidfile "$work/berthd.pid" --config-file "$work/daemon.json" -b "$bbr" --bip "$berth_bip" \
  2>"$work/berthd.log" &
# dockerd takes -b (an existing bridge, keeping its address) or --bip, not both.
ip link add "$dbr" type bridge
ip addr add "$docker_bip" dev "$dbr"
dockerd -H "unix://$dsock" --data-root "$work/docker-root" --exec-root "$run/docker-exec" \
  --pidfile "$work/docker.pid" -b "$dbr" --containerd-namespace=bench-net \
  >"$work/dockerd.log" 2>&1 &
for _ in $(seq 300); do
  b version >/dev/null 2>&1 && d version >/dev/null 2>&1 && break
  sleep 0.2
done
b load -q -i "$img" >/dev/null
d load -q -i "$img" >/dev/null

echo "== network setup time: run --rm busybox true, default bridge vs --network none (n=$runs, medians)"
cmds=()
for eng in "$bsock" "$dsock"; do
  for net in bridge none; do
    cmds+=("DOCKER_HOST=unix://$eng DOCKER_CONFIG=$work/cfg docker run --rm --network $net busybox true")
  done
done
hyperfine -w 3 -r "$runs" --export-json "$work/run.json" "${cmds[@]}" >/dev/null
python3 - "$work/run.json" <<'EOF'
import json, sys
r = [x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]]
b_br, b_none, d_br, d_none = r
print(f"  berthd   bridge {b_br:7.1f} ms   none {b_none:7.1f} ms   added {b_br - b_none:6.1f} ms")
print(f"  dockerd  bridge {d_br:7.1f} ms   none {d_none:7.1f} ms   added {d_br - d_none:6.1f} ms")
print(f"  dockerd / berthd, run on the default bridge: {d_br / b_br:.1f}x")
if b_br - b_none >= 1:
    print(f"  dockerd / berthd, time added by the network: {(d_br - d_none) / (b_br - b_none):.1f}x")
else:
    print("  berthd: the network adds less than 1 ms (within noise); no ratio")
EOF

echo "== TCP throughput, iperf3 -t $secs (first second omitted), medians of $reps, MB/s"
# The host's iperf3 and the libraries it loads, read-only at the same paths. Started through
# `sh -c exec` because berth looks the command up in the image before mounts apply.
mounts=(-v "$(readlink -f "$(command -v iperf3)")":/usr/bin/iperf3:ro)
for lib in $(ldd "$(command -v iperf3)" | grep -o '/[^ ]*'); do
  mounts+=(-v "$(readlink -f "$lib")":"$lib":ro)
done
host_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
[ -n "$host_ip" ] || host_ip=$(hostname -I | awk '{print $1}')
declare -A srv_ip srv_port
for eng in b d; do
  $eng run -d --name ipsrv -p 5201 "${mounts[@]}" busybox sh -c 'exec iperf3 -s' >/dev/null
  srv_ip[$eng]=$($eng inspect -f '{{.NetworkSettings.IPAddress}}' ipsrv)
  srv_port[$eng]=$($eng port ipsrv 5201/tcp | head -1 | sed 's/.*://')
done
# MB/s (10^6 bytes) received, from iperf3 -J on stdin; empty on error.
mbps() {
  python3 -c 'import json, sys
j = json.load(sys.stdin)
if "error" not in j: print("%.1f" % (j["end"]["sum_received"]["bits_per_second"] / 8e6))' 2>/dev/null
}
# One measurement; retried while the server is still coming up.
measure() { # engine kind
  local eng=$1 kind=$2 out=""
  for _ in 1 2 3 4 5; do
    case $kind in
      c2c) out=$($eng run --rm "${mounts[@]}" busybox sh -c 'exec iperf3 "$@"' iperf3 \
        -c "${srv_ip[$eng]}" -t "$secs" -O 1 -J 2>/dev/null | mbps || true) ;;
      lo) out=$(iperf3 -c 127.0.0.1 -p "${srv_port[$eng]}" -t "$secs" -O 1 -J 2>/dev/null | mbps || true) ;;
      host) out=$(iperf3 -c "$host_ip" -p "${srv_port[$eng]}" -t "$secs" -O 1 -J 2>/dev/null | mbps || true) ;;
    esac
    [ -n "$out" ] && break
    sleep 1
  done
  echo "${out:-nan}" >> "$work/tput.$eng.$kind"
}
for _ in $(seq "$reps"); do
  for kind in c2c lo host; do
    measure b "$kind"
    measure d "$kind"
  done
done
python3 - "$work" "$host_ip" <<'EOF'
import statistics, sys
work, host_ip = sys.argv[1], sys.argv[2]
def vals(eng, kind):
    v = [float(x) for x in open(f"{work}/tput.{eng}.{kind}").read().split()]
    return [x for x in v if x == x]
def med(v):
    return statistics.median(v) if v else float("nan")
def span(v):
    return f"{min(v):.0f}-{max(v):.0f}" if v else "-"
for kind, what in (("c2c", "container -> container (default bridge)"),
                   ("lo", "host -> published port on 127.0.0.1"),
                   ("host", f"host -> published port on {host_ip}")):
    bv, dv = vals("b", kind), vals("d", kind)
    b, d = med(bv), med(dv)
    print(f"  {what:44} berthd {b:7.1f} ({span(bv)})   dockerd {d:7.1f} ({span(dv)})"
          f"   berthd / dockerd {b / d:.2f}x")
EOF
