//! Docker's default seccomp profile (moby/profiles `seccomp/default.json`), as an OCI
//! `LinuxSeccomp`: default action ERRNO(EPERM), the allowlist, the argument filters (clone
//! without namespace flags, clone3 → ENOSYS, personality values, socket families except AF_ALG
//! and AF_VSOCK) and the rules unlocked by capabilities, which follow the *final* capability set.

use crate::Result;
use crate::oci_spec::runtime::LinuxSeccomp;

/// The default profile for a process holding `capabilities` (names with `CAP_`).
pub fn default_profile(capabilities: &[String]) -> Result<LinuxSeccomp> {
    let _ = capabilities;
    unimplemented!()
}
