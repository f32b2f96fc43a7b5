#!/usr/bin/env bash
# Builds berth, starts berthd on its default socket (unix:///run/berth/berth.sock, data root
# /var/lib/berth) unless one already answers there, and does berth's main job: load an image and
# run a container from it, through berth and through the real docker CLI. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh --release
sock=/run/berth/berth.sock
export DOCKER_HOST=unix://$sock
if ! target/release/berth version >/dev/null 2>&1; then
  mkdir -p /var/log
  nohup target/release/berthd >/var/log/berthd.log 2>&1 &
  for _ in $(seq 100); do target/release/berth version >/dev/null 2>&1 && break; sleep 0.1; done
  echo "berthd started (pid $!), logging to /var/log/berthd.log"
fi
image=../shared/images/busybox.tar
if [ ! -f "$image" ]; then
  # No shared images: make busybox from Debian's busybox-static.
  tmp=$(mktemp -d); mkdir -p "$tmp/bin"; cp /bin/busybox "$tmp/bin/"
  for a in sh ls cat echo true; do ln -s busybox "$tmp/bin/$a"; done
  tar -C "$tmp" -cf "$tmp/rootfs.tar" bin
  target/release/berth import -c 'CMD ["sh"]' "$tmp/rootfs.tar" busybox:latest
else
  target/release/berth load -i "$image"
fi
target/release/berth images
target/release/berth run --rm busybox echo "hello from a berth container"
docker run --rm busybox sh -c 'echo "hello through the docker CLI, pid $$, host $(hostname), address $(ip -4 -o addr show eth0 | awk "{print \$4}")"'
docker version --format 'docker CLI {{.Client.Version}} -> berthd API {{.Server.APIVersion}}'
docker images
echo "berthd is running; stop it with: kill \$(cat /run/berth/berthd.pid)"
