//! `POST /containers/{id}/update`: Docker's validation of an `UpdateConfig`, its merge into the
//! record's `HostConfig` (moby's `UpdateContainer`), the live change of a running container's
//! cgroup (through `runtime::cgroups`) and the restart policy.
//!
//! Order as moby: validate the request (400), merge into a copy of the host config (conflicts
//! are 409 `Cannot update container <id>: …`), write the cgroup when the container runs (a
//! failure leaves the record unchanged), then persist. Only the fields the request sets are
//! written to the cgroup; a stopped container takes the new values at its next start.

use std::sync::Arc;

use api_types::models::{ContainerUpdateBody, HostConfig, RestartPolicyNameEnum};
use runtime::cgroups::ResourceUpdate;

use super::Containers;
use crate::{EngineError, Result};

/// Docker's smallest memory limit and reservation.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The CFS period `--cpus` uses, in microseconds.
const NANO_CPU_PERIOD: i64 = 100_000;

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidRequest(msg.into())
}

/// Parses a cpuset list (`0-3,5`) into CPU numbers; None when malformed.
fn parse_cpuset(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// moby's `verifyPlatformContainerResources` for an update request (the values as sent).
pub(crate) fn validate(u: &ContainerUpdateBody, ncpu: u32) -> Result<()> {
    let memory = u.memory.unwrap_or(0);
    let swap = u.memory_swap.unwrap_or(0);
    let reservation = u.memory_reservation.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(bad("Minimum memory limit allowed is 6MB"));
    }
    if memory > 0 && swap > 0 && swap < memory {
        return Err(bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if reservation != 0 && reservation < MIN_MEMORY {
        return Err(bad("Minimum memory reservation allowed is 6MB"));
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return Err(bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    if let Some(s) = u.memory_swappiness
        && s != -1
        && !(0..=100).contains(&s)
    {
        return Err(bad(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        )));
    }
    let nano = u.nano_cpus.unwrap_or(0);
    if nano > 0 && u.cpu_period.unwrap_or(0) > 0 {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if nano > 0 && u.cpu_quota.unwrap_or(0) > 0 {
        return Err(bad(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    if nano < 0 || nano > i64::from(ncpu) * 1_000_000_000 {
        return Err(bad(format!(
            "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
        )));
    }
    if let Some(s) = u.cpu_shares
        && s < 0
    {
        return Err(bad(format!(
            "invalid CPU shares ({s}): value must be a positive integer"
        )));
    }
    if let Some(p) = u.cpu_period
        && p != 0
        && !(1000..=1_000_000).contains(&p)
    {
        return Err(bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if let Some(q) = u.cpu_quota
        && q > 0
        && q < 1000
    {
        return Err(bad("CPU cfs quota can not be less than 1ms (i.e. 1000)"));
    }
    for (value, what) in [(&u.cpuset_cpus, "cpus"), (&u.cpuset_mems, "mems")] {
        let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let Some(list) = parse_cpuset(v) else {
            return Err(bad(format!("Invalid value {v} for cpuset {what}")));
        };
        if what == "cpus" && list.iter().any(|c| *c >= ncpu) {
            return Err(bad(format!(
                "Requested CPUs are not available - requested {v}, available: 0-{}",
                ncpu.saturating_sub(1)
            )));
        }
    }
    if let Some(w) = u.blkio_weight
        && w > 0
        && !(10..=1000).contains(&w)
    {
        return Err(bad("Range of blkio weight is from 10 to 1000"));
    }
    if let Some(p) = &u.restart_policy {
        let retries = p.maximum_retry_count.unwrap_or(0);
        if retries < 0 {
            return Err(bad(
                "invalid restart policy: maximum retry count cannot be negative",
            ));
        }
        if retries > 0 && p.name != Some(RestartPolicyNameEnum::ON_FAILURE) {
            return Err(bad(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
    }
    Ok(())
}

/// The same checks for a create request's host config (moby validates both alike).
pub(crate) fn validate_host(h: &HostConfig) -> Result<()> {
    let body = ContainerUpdateBody {
        cpu_shares: h.cpu_shares,
        memory: h.memory,
        blkio_weight: h.blkio_weight,
        cpu_period: h.cpu_period,
        cpu_quota: h.cpu_quota,
        cpuset_cpus: h.cpuset_cpus.clone(),
        cpuset_mems: h.cpuset_mems.clone(),
        memory_reservation: h.memory_reservation,
        memory_swap: h.memory_swap,
        memory_swappiness: h.memory_swappiness,
        nano_cpus: h.nano_cpus,
        restart_policy: h.restart_policy.clone(),
        ..Default::default()
    };
    validate(&body, cpu_count())
}

/// moby's `Container.UpdateContainer`: merges `u` into `h`; the error text is what follows
/// `Cannot update container <id>: `.
pub(crate) fn merge(
    h: &mut HostConfig,
    u: &ContainerUpdateBody,
) -> std::result::Result<(), String> {
    let set = |v: Option<i64>| v.filter(|v| *v != 0);
    let cur_nano = h.nano_cpus.unwrap_or(0);
    let nano = u.nano_cpus.unwrap_or(0);
    if nano > 0 && h.cpu_period.unwrap_or(0) > 0 {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Period has already been set"
                .into(),
        );
    }
    if nano > 0 && h.cpu_quota.unwrap_or(0) > 0 {
        return Err(
            "Conflicting options: Nano CPUs cannot be updated as CPU Quota has already been set"
                .into(),
        );
    }
    if u.cpu_period.unwrap_or(0) > 0 && cur_nano > 0 {
        return Err(
            "Conflicting options: CPU Period cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if u.cpu_quota.unwrap_or(0) > 0 && cur_nano > 0 {
        return Err(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                .into(),
        );
    }
    if let Some(w) = u.blkio_weight.filter(|w| *w != 0) {
        h.blkio_weight = Some(w);
    }
    if let Some(v) = set(u.cpu_shares) {
        h.cpu_shares = Some(v);
    }
    if let Some(v) = set(u.nano_cpus) {
        h.nano_cpus = Some(v);
    }
    if let Some(v) = set(u.cpu_period) {
        h.cpu_period = Some(v);
    }
    if let Some(v) = set(u.cpu_quota) {
        h.cpu_quota = Some(v);
    }
    if let Some(v) = u.cpuset_cpus.as_ref().filter(|v| !v.is_empty()) {
        h.cpuset_cpus = Some(v.clone());
    }
    if let Some(v) = u.cpuset_mems.as_ref().filter(|v| !v.is_empty()) {
        h.cpuset_mems = Some(v.clone());
    }
    if let Some(m) = set(u.memory) {
        if m > h.memory_swap.unwrap_or(0) && u.memory_swap.unwrap_or(0) == 0 {
            return Err("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into());
        }
        h.memory = Some(m);
    }
    if let Some(v) = set(u.memory_swap) {
        h.memory_swap = Some(v);
    }
    if let Some(v) = set(u.memory_reservation) {
        h.memory_reservation = Some(v);
    }
    if let Some(v) = set(u.cpu_realtime_period) {
        h.cpu_realtime_period = Some(v);
    }
    if let Some(v) = set(u.cpu_realtime_runtime) {
        h.cpu_realtime_runtime = Some(v);
    }
    if let Some(p) = u.pids_limit {
        // 0 and any negative value mean unlimited; moby stores 0.
        h.pids_limit = Some(p.max(0));
    }
    if let Some(p) = &u.restart_policy
        && p.name.is_some_and(|n| n != RestartPolicyNameEnum::EMPTY)
    {
        if h.auto_remove.unwrap_or(false) && p.name != Some(RestartPolicyNameEnum::NO) {
            return Err(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            );
        }
        h.restart_policy = Some(api_types::models::RestartPolicy {
            name: p.name,
            maximum_retry_count: Some(p.maximum_retry_count.unwrap_or(0)),
        });
    }
    Ok(())
}

/// What to write into a running container's cgroup: the fields the request sets (moby's
/// `toContainerdResources`).
pub(crate) fn resource_update(u: &ContainerUpdateBody) -> ResourceUpdate {
    let pos = |v: Option<i64>| v.filter(|v| *v > 0);
    let (mut period, mut quota) = (None, None);
    if let Some(n) = pos(u.nano_cpus) {
        period = Some(NANO_CPU_PERIOD as u64);
        quota = Some(n.saturating_mul(NANO_CPU_PERIOD) / 1_000_000_000);
    }
    if quota.is_none() {
        quota = u.cpu_quota.filter(|q| *q != 0);
    }
    if period.is_none() {
        period = pos(u.cpu_period).and_then(|p| u64::try_from(p).ok());
    }
    ResourceUpdate {
        memory: pos(u.memory),
        memory_swap: u.memory_swap.filter(|s| *s > 0 || *s == -1),
        memory_reservation: pos(u.memory_reservation),
        cpu_shares: pos(u.cpu_shares).and_then(|s| u64::try_from(s).ok()),
        cpu_period: period,
        cpu_quota: quota,
        cpuset_cpus: u.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        cpuset_mems: u.cpuset_mems.clone().filter(|s| !s.is_empty()),
        pids_limit: u.pids_limit,
        blkio_weight: u.blkio_weight.filter(|w| *w > 0),
    }
}

/// The number of CPUs the daemon may use.
fn cpu_count() -> u32 {
    std::thread::available_parallelism()
        .ok()
        .and_then(|n| u32::try_from(n.get()).ok())
        .unwrap_or(1)
}

impl Containers {
    /// `POST /containers/{id}/update`: the warnings (Docker answers `null` when there are none).
    pub(crate) async fn update(
        self: &Arc<Self>,
        reference: &str,
        body: ContainerUpdateBody,
    ) -> Result<Option<Vec<String>>> {
        validate(&body, cpu_count())?;
        let ctr = self.get(reference)?;
        let _op = ctr.op.lock().await;
        let cannot = |e: String| format!("Cannot update container {}: {e}", ctr.id);
        let (host, live) = {
            let r = ctr.rec();
            let mut h = r.host_config.clone();
            merge(&mut h, &body).map_err(|e| EngineError::Conflict(cannot(e)))?;
            (h, r.state.running && !r.state.restarting)
        };
        let mut warnings = Vec::new();
        let upd = resource_update(&body);
        if live && !upd.is_empty() {
            let cg = super::stats::cgroup_of(&self.cgroup_root, &ctr.id);
            warnings = tokio::task::spawn_blocking(move || cg.update(&upd))
                .await
                .map_err(|_| EngineError::TaskFailed {
                    what: "container update",
                })?
                .map_err(|e| EngineError::UpdateFailed(cannot(e.to_string())))?;
        }
        {
            let mut r = ctr.rec();
            r.host_config = host;
            r.save(&self.dirs(&ctr.id).dir)?;
        }
        self.event(&ctr, "update", &[]);
        Ok((!warnings.is_empty()).then_some(warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::models::RestartPolicy;

    fn body(v: serde_json::Value) -> ContainerUpdateBody {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_messages_are_dockers() {
        let err = |v| validate(&body(v), 2).unwrap_err().to_string();
        assert_eq!(
            err(serde_json::json!({"Memory": 1000})),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(serde_json::json!({"Memory": 67108864, "MemorySwap": 33554432})),
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        );
        assert_eq!(
            err(serde_json::json!({"NanoCpus": 3_000_000_000i64})),
            "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
        );
        assert_eq!(
            err(serde_json::json!({"BlkioWeight": 5})),
            "Range of blkio weight is from 10 to 1000"
        );
        assert_eq!(
            err(serde_json::json!({"CpusetCpus": "0-7"})),
            "Requested CPUs are not available - requested 0-7, available: 0-1"
        );
        assert_eq!(
            err(serde_json::json!({"CpusetCpus": "x"})),
            "Invalid value x for cpuset cpus"
        );
        assert_eq!(
            err(serde_json::json!({"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}})),
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        );
        assert!(
            validate(
                &body(
                    serde_json::json!({"Memory": 134217728, "CpusetCpus": "0,1", "PidsLimit": -1})
                ),
                2
            )
            .is_ok()
        );
        assert_eq!(parse_cpuset("0-2,5"), Some(vec![0, 1, 2, 5]));
        let h = HostConfig {
            memory: Some(1 << 20),
            ..Default::default()
        };
        assert_eq!(
            validate_host(&h).unwrap_err().to_string(),
            "Minimum memory limit allowed is 6MB"
        );
        assert!(validate_host(&HostConfig::default()).is_ok());
    }

    #[test]
    fn merge_like_moby() {
        let mut h = HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            nano_cpus: Some(500_000_000),
            ..Default::default()
        };
        merge(&mut h, &body(serde_json::json!({"Memory": 134217728}))).unwrap();
        assert_eq!(h.memory, Some(128 << 20));
        let e = merge(&mut h, &body(serde_json::json!({"Memory": 268435456}))).unwrap_err();
        assert!(e.starts_with("Memory limit should be smaller"), "{e}");
        merge(
            &mut h,
            &body(serde_json::json!({"Memory": 268435456, "MemorySwap": -1})),
        )
        .unwrap();
        assert_eq!((h.memory, h.memory_swap), (Some(256 << 20), Some(-1)));
        let e = merge(&mut h, &body(serde_json::json!({"CpuQuota": 50000}))).unwrap_err();
        assert_eq!(
            e,
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        );
        merge(
            &mut h,
            &body(serde_json::json!({"PidsLimit": -1, "CpuShares": 512})),
        )
        .unwrap();
        assert_eq!((h.pids_limit, h.cpu_shares), (Some(0), Some(512)));
        // Restart policy: set, unless AutoRemove.
        merge(
            &mut h,
            &body(serde_json::json!({"RestartPolicy": {"Name": "always"}})),
        )
        .unwrap();
        assert_eq!(
            h.restart_policy,
            Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: Some(0)
            })
        );
        h.auto_remove = Some(true);
        let e = merge(
            &mut h,
            &body(serde_json::json!({"RestartPolicy": {"Name": "on-failure"}})),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "Restart policy cannot be updated because AutoRemove is enabled for the container"
        );
        merge(
            &mut h,
            &body(serde_json::json!({"RestartPolicy": {"Name": "no"}})),
        )
        .unwrap();
        // An empty name leaves the policy alone.
        merge(
            &mut h,
            &body(serde_json::json!({"RestartPolicy": {"Name": ""}})),
        )
        .unwrap();
        assert_eq!(
            h.restart_policy.and_then(|p| p.name),
            Some(RestartPolicyNameEnum::NO)
        );
    }

    #[test]
    fn cgroup_values_from_the_request() {
        let u = resource_update(&body(serde_json::json!({
            "NanoCpus": 500_000_000, "Memory": 134217728, "CpusetCpus": "",
            "PidsLimit": 0, "BlkioWeight": 0, "MemorySwap": 0
        })));
        assert_eq!(u.cpu_period, Some(100_000));
        assert_eq!(u.cpu_quota, Some(50_000));
        assert_eq!(u.memory, Some(128 << 20));
        assert_eq!(u.memory_swap, None);
        assert_eq!(u.cpuset_cpus, None);
        assert_eq!(u.pids_limit, Some(0));
        assert_eq!(u.blkio_weight, None);
        assert!(
            resource_update(&body(
                serde_json::json!({"RestartPolicy": {"Name": "always"}})
            ))
            .is_empty()
        );
    }
}
