use std::fs;
use std::path::Path;

use nix::unistd::Pid;

use crate::common::{self, CGROUP_PROCS, ControllerOpt, WrapIoResult, WrappedIoError};

pub(super) trait Controller {
    type Error: From<WrappedIoError>;
    type Resource;

    /// Adds a new task specified by its pid to the cgroup
    fn add_task(pid: Pid, cgroup_path: &Path) -> Result<(), Self::Error> {
        fs::create_dir_all(cgroup_path).wrap_create_dir(cgroup_path)?;
        join_task(pid, cgroup_path)?;
        Ok(())
    }

    /// Applies resource restrictions to the cgroup
    fn apply(controller_opt: &ControllerOpt, cgroup_root: &Path) -> Result<(), Self::Error>;

    /// Checks if the controller needs to handle this request
    fn needs_to_handle<'a>(controller_opt: &'a ControllerOpt) -> Option<&'a Self::Resource>;
}

/// berth patch: moves `pid` into the cgroup at `cgroup_path`.
///
/// A single-threaded process moving itself writes "0" to `tasks`: the kernel then migrates one
/// thread without taking the global `cgroup_threadgroup_rwsem` for writing, which otherwise waits
/// for an RCU grace period (5-25 ms on these hosts) on every container start. Any other case
/// writes the pid to `cgroup.procs` as before.
pub(super) fn join_task(pid: Pid, cgroup_path: &Path) -> Result<(), WrappedIoError> {
    if pid == nix::unistd::getpid() && single_threaded() {
        return common::write_cgroup_file(cgroup_path.join("tasks"), 0);
    }
    common::write_cgroup_file(cgroup_path.join(CGROUP_PROCS), pid)
}

/// Whether the calling process has exactly one thread.
fn single_threaded() -> bool {
    fs::read_dir("/proc/self/task")
        .map(|d| d.take(2).count() == 1)
        .unwrap_or(false)
}
