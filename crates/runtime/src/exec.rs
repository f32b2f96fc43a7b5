//! Exec processes (berthd's side): a second process in a running container, run by its own
//! small shim.
//!
//! An exec shim is the same `berthd shim <state-dir>/shim.json` binary and poll loop as a
//! container's shim; its `shim.json` carries an extra `exec` section ([`ExecSpec`]) and its state
//! directory holds `process.json` (the OCI process, derived from the container's own spec).
//! Unlike a container shim it does not start its process at once: it binds `shim.sock`, reports
//! `ready`, and waits for `{"op":"start"}` so that the caller can attach first and lose no
//! output. It joins the container with libcontainer's tenant builder, writes no json-file log,
//! never deletes the container, and writes its own `exit.json` when its process ends.
//!
//! This module knows nothing of exec IDs or API records: the engine keeps those.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use serde_json::{Value, json};

use crate::client::{Shim, ShimConfig};
use crate::oci_spec::runtime::{Process, Spec};
use crate::{Result, RuntimeError};

/// What to run in the container, already resolved by the caller (user to numbers, env merged
/// with the container's, working directory defaulted).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// Absolute; empty means `/`.
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// Every capability the kernel knows (the container's seccomp profile still applies, as with
    /// Docker's `exec --privileged`).
    pub privileged: bool,
    /// A pty for the process (`-t`).
    pub tty: bool,
    /// Keep a stdin pipe for attach (`-i`); closed at the client's stdin EOF.
    pub open_stdin: bool,
    /// Initial console size (rows, cols), with `tty`.
    pub console_size: Option<(u16, u16)>,
}

/// `shim.json` as the shim reads it: a container's [`ShimConfig`], plus the exec section for an
/// exec shim.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct ShimFile {
    #[serde(flatten)]
    pub base: ShimConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecSpec>,
}

/// The exec's OCI process: the container's process (rlimits, capabilities, no-new-privileges,
/// oom score) with the exec's command, environment, directory, user and terminal.
pub fn exec_process(container: &Spec, e: &ExecSpec) -> Result<Process> {
    if e.args.is_empty() {
        return Err(RuntimeError::InvalidSpec(
            "No exec command specified".into(),
        ));
    }
    let base = container
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidSpec("the container's spec has no process".into()))?;
    let mut p = serde_json::to_value(base)
        .map_err(|e| RuntimeError::InvalidSpec(format!("exec process: {e}")))?;
    let Value::Object(map) = &mut p else {
        return Err(RuntimeError::InvalidSpec(
            "exec process: not an object".into(),
        ));
    };
    map.insert("args".into(), json!(e.args));
    map.insert("env".into(), json!(e.env));
    map.insert(
        "cwd".into(),
        json!(if e.cwd.is_empty() {
            "/"
        } else {
            e.cwd.as_str()
        }),
    );
    map.insert(
        "user".into(),
        json!({"uid": e.uid, "gid": e.gid, "additionalGids": e.additional_gids}),
    );
    map.insert("terminal".into(), json!(e.tty));
    map.remove("consoleSize");
    if e.tty
        && let Some((rows, cols)) = e.console_size
    {
        map.insert("consoleSize".into(), json!({"height": rows, "width": cols}));
    }
    if e.privileged {
        // What `exec --privileged` gets: every capability the kernel knows and berthd holds.
        let caps = crate::spec::kernel_capabilities();
        map.insert(
            "capabilities".into(),
            json!({
                "bounding": caps, "effective": caps, "permitted": caps,
                "inheritable": [], "ambient": [],
            }),
        );
    }
    serde_json::from_value(p).map_err(|e| RuntimeError::InvalidSpec(format!("exec process: {e}")))
}

impl Shim {
    /// Prepares and spawns the shim of an exec in this (running) container: `state_dir` gets
    /// `process.json` and `shim.json`, and the shim answers `ready` once `shim.sock` listens.
    /// The process itself starts with [`Shim::start_process`]. Blocking. Nothing is left behind
    /// on failure.
    pub fn spawn_exec(
        &self,
        shim_binary: &Path,
        state_dir: &Path,
        spec: &ExecSpec,
    ) -> Result<Shim> {
        let exec = Shim::open(state_dir);
        match self.spawn_exec_inner(shim_binary, state_dir, spec) {
            Ok(()) => Ok(exec),
            Err(e) => {
                let _ = std::fs::remove_dir_all(state_dir);
                Err(e)
            }
        }
    }

    fn spawn_exec_inner(
        &self,
        shim_binary: &Path,
        state_dir: &Path,
        spec: &ExecSpec,
    ) -> Result<()> {
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| RuntimeError::Io { op, path, source }
        };
        let own_json = self.state_dir().join("shim.json");
        let container: ShimConfig = std::fs::read(&own_json)
            .map_err(io("read", &own_json))
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| RuntimeError::InvalidSpec(format!("container shim.json: {e}")))
            })?;
        let bundle = self.state_dir().join("bundle/config.json");
        let cspec: Spec = std::fs::read(&bundle)
            .map_err(io("read", &bundle))
            .and_then(|b| {
                serde_json::from_slice(&b)
                    .map_err(|e| RuntimeError::InvalidSpec(format!("container spec: {e}")))
            })?;
        let process = exec_process(&cspec, spec)?;

        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io("create state dir", state_dir))?;
        let _ = std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700));
        let process_json = state_dir.join("process.json");
        let bytes = serde_json::to_vec(&process)
            .map_err(|e| RuntimeError::InvalidSpec(format!("exec process: {e}")))?;
        std::fs::write(&process_json, bytes).map_err(io("write", &process_json))?;
        let file = ShimFile {
            base: ShimConfig {
                id: container.id,
                state_dir: state_dir.to_path_buf(),
                runtime_root: container.runtime_root,
                log_path: Default::default(),
                log_max_size: None,
                log_max_files: 1,
                tty: spec.tty,
                open_stdin: spec.open_stdin,
                stdin_once: true,
                console_size: spec.console_size,
                gated: true,
                monitor: None,
            },
            exec: Some(spec.clone()),
        };
        let shim_json = state_dir.join("shim.json");
        let bytes = serde_json::to_vec(&file)
            .map_err(|e| RuntimeError::InvalidSpec(format!("exec shim.json: {e}")))?;
        std::fs::write(&shim_json, bytes).map_err(io("write", &shim_json))?;
        let line = crate::client::spawn_shim(shim_binary, &shim_json)?;
        if line == "ready" {
            return Ok(());
        }
        if let Some(msg) = line.strip_prefix("error ") {
            return Err(RuntimeError::StartFailed(msg.to_string()));
        }
        Err(RuntimeError::StartFailed(format!(
            "exec shim exited without reporting ({line:?})"
        )))
    }

    /// Starts the process of a spawned exec, or of a container created with
    /// [`ShimConfig::gated`](crate::ShimConfig) (attach first to see all of its output): its
    /// host PID, or [`RuntimeError::StartFailed`] with the runtime's wording (`exec: "x":
    /// executable file not found in $PATH`), after which the shim is gone.
    pub async fn start_process(&self) -> Result<i32> {
        let Some(reply) = self.request(json!({"op": "start"})).await else {
            return Err(RuntimeError::StartFailed(
                "the exec shim went away before the start".into(),
            ));
        };
        let v: Value = serde_json::from_str(&reply)
            .map_err(|e| RuntimeError::StartFailed(format!("bad reply from the exec shim: {e}")))?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            return Err(RuntimeError::StartFailed(e.to_string()));
        }
        v.get("pid")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| {
                RuntimeError::StartFailed(format!("bad reply from the exec shim: {reply}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container_spec() -> Spec {
        let c = crate::ContainerSpec {
            id: "x".into(),
            rootfs: "/tmp/rootfs".into(),
            args: vec!["sleep".into(), "1".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/srv".into(),
            tty: true,
            console_size: Some((10, 20)),
            ..Default::default()
        };
        crate::spec::build(&c).unwrap()
    }

    #[test]
    fn process_takes_the_exec_settings() {
        let e = ExecSpec {
            args: vec!["id".into(), "-u".into()],
            env: vec!["A=1".into()],
            cwd: String::new(),
            uid: 65534,
            gid: 65534,
            additional_gids: vec![65534, 50],
            ..Default::default()
        };
        let p = exec_process(&container_spec(), &e).unwrap();
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["args"], json!(["id", "-u"]));
        assert_eq!(v["env"], json!(["A=1"]));
        assert_eq!(v["cwd"], "/");
        assert_eq!(v["user"]["uid"], 65534);
        assert_eq!(v["user"]["additionalGids"], json!([65534, 50]));
        assert_eq!(v["terminal"], false);
        assert!(v.get("consoleSize").is_none_or(Value::is_null));
        // The container's capabilities and rlimits are kept.
        let caps = v["capabilities"]["bounding"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_CHOWN"));
        assert!(!caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(!v["rlimits"].as_array().unwrap().is_empty());
    }

    #[test]
    fn tty_and_privileged() {
        let e = ExecSpec {
            args: vec!["sh".into()],
            cwd: "/tmp".into(),
            tty: true,
            console_size: Some((30, 100)),
            privileged: true,
            ..Default::default()
        };
        let v = serde_json::to_value(exec_process(&container_spec(), &e).unwrap()).unwrap();
        assert_eq!(v["terminal"], true);
        assert_eq!(v["consoleSize"]["height"], 30);
        assert_eq!(v["consoleSize"]["width"], 100);
        assert_eq!(v["cwd"], "/tmp");
        let caps = v["capabilities"]["effective"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_SYS_ADMIN"));
        assert!(
            exec_process(&container_spec(), &ExecSpec::default())
                .unwrap_err()
                .to_string()
                .contains("No exec command")
        );
    }

    #[test]
    fn shim_file_keeps_container_configs_readable() {
        let base = ShimConfig {
            id: "c".into(),
            ..Default::default()
        };
        // A container's shim.json has no exec section.
        let json = serde_json::to_string(&base).unwrap();
        let f: ShimFile = serde_json::from_str(&json).unwrap();
        assert!(f.exec.is_none());
        assert_eq!(f.base.id, "c");
        let with = ShimFile {
            base,
            exec: Some(ExecSpec {
                args: vec!["true".into()],
                ..Default::default()
            }),
        };
        let json = serde_json::to_string(&with).unwrap();
        let back: ShimFile = serde_json::from_str(&json).unwrap();
        assert_eq!(back.exec.unwrap().args, vec!["true"]);
        // And it still reads as a plain ShimConfig.
        let plain: ShimConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(plain.id, "c");
    }
}
