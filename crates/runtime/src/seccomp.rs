//! Docker's default seccomp profile (moby/profiles `seccomp/default.json`), as an OCI
//! `LinuxSeccomp`: default action ERRNO(EPERM), the allowlist, the argument filters (clone
//! without namespace flags, clone3 → ENOSYS, personality values, socket families except AF_ALG
//! and AF_VSOCK) and the rules unlocked by capabilities, which follow the *final* capability set.
//!
//! Names unknown to the host's libseccomp are skipped by libcontainer (with a warning), as runc
//! does, so the table can list syscalls newer than the build host.

use serde_json::{Value, json};

use crate::oci_spec::runtime::LinuxSeccomp;
use crate::{Result, RuntimeError};

/// Allowed for everyone (moby's unconditional list, plus ptrace/process_vm_* for kernels ≥ 4.8).
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    // kernel >= 4.8: allowed without CAP_SYS_PTRACE.
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    // x86 only (amd64, x32, x86).
    "arch_prctl",
    "modify_ldt",
];

/// Syscalls unlocked by one capability.
const CAP_GATED: &[(&str, &[&str])] = &[
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Socket families allowed to socket(2): every one the kernel still implements except AF_ALG
/// (38) and AF_VSOCK (40). 1..=11 become one `< 12` rule, the rest one equality each.
const SOCKET_FAMILIES_AFTER_RANGE: &[u64] = &[
    13, 14, 15, 16, 17, 18, 21, 22, 24, 26, 27, 28, 29, 30, 31, 32, 33, 35, 36, 39, 41, 42, 43, 44,
    45,
];

/// Values personality(2) accepts.
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP.
pub const CLONE_NS_MASK: u64 = 0x7E02_0000;

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

fn allow(names: &[&str]) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ALLOW"})
}

fn allow_arg(name: &str, value: u64, value_two: Option<u64>, op: &str) -> Value {
    let mut arg = json!({"index": 0, "value": value, "op": op});
    if let Some(v2) = value_two {
        arg["valueTwo"] = json!(v2);
    }
    json!({"names": [name], "action": "SCMP_ACT_ALLOW", "args": [arg]})
}

/// The default profile for a process holding `capabilities` (names with `CAP_`).
pub fn default_profile(capabilities: &[String]) -> Result<LinuxSeccomp> {
    let has = |cap: &str| capabilities.iter().any(|c| c.eq_ignore_ascii_case(cap));
    let mut rules = vec![allow(ALLOWED)];
    rules.push(allow_arg("socket", 12, None, "SCMP_CMP_LT"));
    for family in SOCKET_FAMILIES_AFTER_RANGE {
        rules.push(allow_arg("socket", *family, None, "SCMP_CMP_EQ"));
    }
    for p in PERSONALITIES {
        rules.push(allow_arg("personality", *p, None, "SCMP_CMP_EQ"));
    }
    for (cap, names) in CAP_GATED {
        if has(cap) {
            rules.push(allow(names));
        }
    }
    if !has("CAP_SYS_ADMIN") {
        rules.push(allow_arg(
            "clone",
            CLONE_NS_MASK,
            Some(0),
            "SCMP_CMP_MASKED_EQ",
        ));
        rules.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
    }
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": rules,
    });
    serde_json::from_value(profile)
        .map_err(|e| RuntimeError::InvalidSpec(format!("seccomp profile: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};
    use crate::spec::DEFAULT_CAPABILITIES;

    fn defaults() -> Vec<String> {
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    }

    fn allowed_unconditionally(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().as_ref().unwrap().iter().any(|s| {
            s.names().iter().any(|n| n == name)
                && s.action() == LinuxSeccompAction::ScmpActAllow
                && s.args().as_ref().is_none_or(|a| a.is_empty())
        })
    }

    fn mentioned(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .any(|s| s.names().iter().any(|n| n == name))
    }

    #[test]
    fn default_blocks_dangerous_calls() {
        let p = default_profile(&defaults()).unwrap();
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(1));
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "unshare",
            "mount",
            "umount2",
            "setns",
            "bpf",
            "ptrace_nope",
            "kexec_load",
            "io_uring_setup",
            "userfaultfd",
            "pivot_root",
            "open_by_handle_at",
            "reboot",
            "init_module",
        ] {
            assert!(
                !allowed_unconditionally(&p, name),
                "{name} must not be allowed"
            );
        }
        for name in ["read", "write", "execve", "chroot", "ptrace", "arch_prctl"] {
            assert!(allowed_unconditionally(&p, name), "{name} must be allowed");
        }
        assert!(!mentioned(&p, "keyctl"));
    }

    #[test]
    fn clone_filters_without_sys_admin() {
        let p = default_profile(&defaults()).unwrap();
        let rules = p.syscalls().as_ref().unwrap();
        let clone = rules
            .iter()
            .find(|s| s.names() == &["clone".to_string()])
            .unwrap();
        let arg = clone.args().as_ref().unwrap()[0];
        assert_eq!(arg.value(), 0x7E020000);
        assert_eq!(arg.value_two(), Some(0));
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules
            .iter()
            .find(|s| s.names() == &["clone3".to_string()])
            .unwrap();
        assert_eq!(clone3.action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3.errno_ret(), Some(38));
    }

    #[test]
    fn sys_admin_unlocks_mount() {
        let mut caps = defaults();
        caps.push("CAP_SYS_ADMIN".into());
        let p = default_profile(&caps).unwrap();
        for name in ["mount", "unshare", "setns", "clone", "clone3"] {
            assert!(allowed_unconditionally(&p, name), "{name}");
        }
        assert!(!mentioned(&p, "keyctl"));
        let p = default_profile(&["CAP_SYS_PTRACE".to_string()]).unwrap();
        assert!(allowed_unconditionally(&p, "kcmp"));
        assert!(!allowed_unconditionally(&p, "chroot"));
    }

    #[test]
    fn socket_blocks_alg_and_vsock() {
        let p = default_profile(&defaults()).unwrap();
        let allowed = |fam: u64| {
            p.syscalls()
                .as_ref()
                .unwrap()
                .iter()
                .filter(|s| s.names() == &["socket".to_string()])
                .any(|s| {
                    let a = s.args().as_ref().unwrap()[0];
                    match a.op() {
                        LinuxSeccompOperator::ScmpCmpLt => fam < a.value(),
                        LinuxSeccompOperator::ScmpCmpEq => fam == a.value(),
                        _ => false,
                    }
                })
        };
        for fam in [1, 2, 10, 16, 17, 39, 41] {
            assert!(allowed(fam), "{fam}");
        }
        assert!(!allowed(38));
        assert!(!allowed(40));
    }
}
