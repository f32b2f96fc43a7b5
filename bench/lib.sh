# Shared by the bench scripts (sourced, not run): scratch directories, the fresh filesystem
# both engines' data roots live on, and stopping a daemon by its pid file.

# Sets $work (scratch, under /tmp), $run (exec roots, on tmpfs as both daemons have by
# default) and $roots (where the data roots go). With FS=loop (the default) $roots is a fresh
# ext4 of SIZE (default 8G) loop-mounted under $work: on these VMs the root filesystem has no
# journal and its block groups under /tmp are churned by builds and tests, so ext4 skips
# "recently deleted" inodes on every create, which hides both engines' cost behind the disk's.
# FS=host keeps the data roots in $work.
bench_dirs() {
  work=$(mktemp -d /tmp/berth-bench.XXXXXX)
  run=$(mktemp -d /run/berth-bench.XXXXXX)
  roots=$work
  if [ "${FS:-loop}" = loop ]; then
    truncate -s "${1:-8G}" "$work/fs.img"
    mkfs.ext4 -q -F "$work/fs.img"
    mkdir -p "$work/fs"
    mount -o loop "$work/fs.img" "$work/fs"
    roots=$work/fs
  fi
}

# Unmounts the fresh filesystem (after the daemons stopped) and removes the scratch dirs.
bench_dirs_remove() {
  umount "$roots/docker-root" 2>/dev/null || true
  [ "$roots" = "$work" ] || umount "$roots" 2>/dev/null || umount -l "$roots" 2>/dev/null || true
  rm -rf "$work" "$run" 2>/dev/null || true
}

# Stops the process whose pid is in file $1 (SIGTERM, up to 20 s).
stop_pid() {
  local f=$1 pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
}
