#!/usr/bin/env bash
# Installs the system packages berth's build, tests and demo need (Debian; run as root).
#   busybox-static  a busybox for test images when ../shared/images is absent
#   skopeo          checks that `save` output is a valid docker-archive
#   docker.io       a real dockerd, to check that our archives load into Docker (tests, bench)
#   hyperfine       side-by-side benchmarks in bench/
#   libseccomp-dev, pkg-config  build libcontainer's seccomp support (runtime crate)
#   libc6-dev       libc.a, for the statically linked berth-shim (scripts/build.sh)
#   nftables        the `nft` binary berthd runs for NAT and published ports (network crate)
#   iproute2, iptables  `ip` for test cleanup; iptables when a dockerd's FORWARD policy is DROP
#   docker-compose  compose 1.29, driven against berthd by the networking e2e tests
#   docker-registry Debian's registry: the pull e2e tests pull from it (tests/e2e/tests/pull.rs)
#   openssl         test CAs and certificates (registry certs.d, berthd's mutual TLS e2e tests)
#   e2fsprogs, util-linux  mkfs.ext4, mount -o loop, losetup: the full-disk fault tests and benches
set -euo pipefail
pkgs=(busybox-static skopeo docker.io hyperfine curl libseccomp-dev pkg-config libc6-dev nftables iproute2 iptables docker-compose docker-registry openssl e2fsprogs util-linux)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
