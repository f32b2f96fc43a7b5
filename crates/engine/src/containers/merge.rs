//! The create request merged with the image's config, by Docker's rules.

use std::collections::HashMap;

use api_types::models::{ContainerConfig, ContainerCreateBody, HostConfig};

use crate::{EngineError, Result};

/// The effective config and argv of a new container.
#[derive(Debug, Clone)]
pub(crate) struct Merged {
    pub config: ContainerConfig,
    pub path: String,
    pub args: Vec<String>,
}

/// Splits the create body into its Config part.
pub(crate) fn config_of(b: &ContainerCreateBody) -> ContainerConfig {
    ContainerConfig {
        hostname: b.hostname.clone(),
        domainname: b.domainname.clone(),
        user: b.user.clone(),
        attach_stdin: b.attach_stdin,
        attach_stdout: b.attach_stdout,
        attach_stderr: b.attach_stderr,
        exposed_ports: b.exposed_ports.clone(),
        tty: b.tty,
        open_stdin: b.open_stdin,
        stdin_once: b.stdin_once,
        env: b.env.clone(),
        cmd: b.cmd.clone(),
        healthcheck: b.healthcheck.clone(),
        args_escaped: b.args_escaped,
        image: b.image.clone(),
        volumes: b.volumes.clone(),
        working_dir: b.working_dir.clone(),
        entrypoint: b.entrypoint.clone(),
        network_disabled: b.network_disabled,
        on_build: b.on_build.clone(),
        labels: b.labels.clone(),
        stop_signal: b.stop_signal.clone(),
        stop_timeout: b.stop_timeout,
        shell: b.shell.clone(),
    }
}

fn env_key(e: &str) -> &str {
    e.split_once('=').map_or(e, |(k, _)| k)
}

/// Image env first, then the user's, a user key replacing the image's in place.
pub(crate) fn merge_env(image: &[String], user: &[String]) -> Vec<String> {
    let mut out: Vec<String> = image.to_vec();
    for e in user {
        match out.iter_mut().find(|x| env_key(x) == env_key(e)) {
            Some(slot) => *slot = e.clone(),
            None => out.push(e.clone()),
        }
    }
    out
}

fn non_empty(v: &Option<String>) -> Option<String> {
    v.clone().filter(|s| !s.is_empty())
}

fn union(a: Option<Vec<String>>, b: Option<Vec<String>>) -> Option<Vec<String>> {
    match (a, b) {
        (None, None) => None,
        (a, b) => {
            let mut out = a.unwrap_or_default();
            for x in b.unwrap_or_default() {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
            Some(out)
        }
    }
}

/// Merges the user's config with the image's (`images::ContainerConfig`).
pub(crate) fn merge(
    user: &ContainerConfig,
    image: Option<&images::ContainerConfig>,
) -> Result<Merged> {
    let img = image.cloned().unwrap_or_default();
    let mut c = user.clone();

    // Entrypoint/Cmd: a user entrypoint resets the image's cmd; `--entrypoint ""` clears it.
    let (entrypoint, cmd) = match &user.entrypoint {
        Some(ep) => {
            let ep: Vec<String> = if ep.len() == 1 && ep[0].is_empty() {
                Vec::new()
            } else {
                ep.clone()
            };
            (ep, user.cmd.clone().unwrap_or_default())
        }
        None => {
            let cmd = match &user.cmd {
                Some(cmd) if !cmd.is_empty() => cmd.clone(),
                _ => img.cmd.clone().unwrap_or_default(),
            };
            (img.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let mut argv = entrypoint.clone();
    argv.extend(cmd.iter().cloned());
    if argv.is_empty() {
        return Err(EngineError::InvalidRequest("no command specified".into()));
    }
    c.entrypoint = (!entrypoint.is_empty()).then_some(entrypoint);
    c.cmd = (!cmd.is_empty()).then_some(cmd);

    c.env = Some(merge_env(
        img.env.as_deref().unwrap_or_default(),
        user.env.as_deref().unwrap_or_default(),
    ));
    c.working_dir = Some(
        non_empty(&user.working_dir)
            .or_else(|| non_empty(&img.working_dir))
            .unwrap_or_default(),
    );
    c.user = Some(
        non_empty(&user.user)
            .or_else(|| non_empty(&img.user))
            .unwrap_or_default(),
    );
    let keys = |m: &Option<serde_json::Map<String, serde_json::Value>>| {
        m.as_ref().map(|m| m.keys().cloned().collect::<Vec<_>>())
    };
    c.exposed_ports = union(keys(&img.exposed_ports), user.exposed_ports.clone());
    c.volumes = union(keys(&img.volumes), user.volumes.clone());
    let mut labels: HashMap<String, String> =
        img.labels.clone().unwrap_or_default().into_iter().collect();
    labels.extend(user.labels.clone().unwrap_or_default());
    c.labels = Some(labels);
    c.stop_signal = non_empty(&user.stop_signal).or_else(|| non_empty(&img.stop_signal));
    if c.on_build.is_none() {
        c.on_build = img.on_build.clone();
    }
    if c.shell.is_none() {
        c.shell = img.shell.clone();
    }
    let path = argv.remove(0);
    Ok(Merged {
        config: c,
        path,
        args: argv,
    })
}

/// Fills the host config's defaults (as moby does at create).
pub(crate) fn host_defaults(h: &mut HostConfig) {
    if h.network_mode.as_deref().is_none_or(str::is_empty) {
        h.network_mode = Some("default".into());
    }
    if h.shm_size.is_none_or(|s| s <= 0) {
        h.shm_size = Some(64 * 1024 * 1024);
    }
    let log = h.log_config.get_or_insert_with(Default::default);
    if log.typ.as_deref().is_none_or(str::is_empty) {
        log.typ = Some("json-file".into());
    }
    if log.config.is_none() {
        log.config = Some(HashMap::new());
    }
    // moby's adaptContainerSettings: swap defaults to the memory limit again (memory + swap =
    // twice the memory), recorded so that `update` and inspect see what the cgroup has.
    if let Some(m) = h.memory.filter(|m| *m > 0)
        && h.memory_swap.unwrap_or(0) == 0
    {
        h.memory_swap = Some(m.saturating_mul(2));
    }
    if h.restart_policy.is_none() {
        h.restart_policy = Some(api_types::models::RestartPolicy {
            name: Some(api_types::models::RestartPolicyNameEnum::NO),
            maximum_retry_count: Some(0),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(cmd: &[&str], ep: Option<&[&str]>) -> images::ContainerConfig {
        serde_json::from_value(serde_json::json!({
            "Cmd": cmd,
            "Entrypoint": ep,
            "Env": ["PATH=/bin", "A=1"],
            "Labels": {"l": "img"},
            "ExposedPorts": {"80/tcp": {}},
            "WorkingDir": "/srv",
        }))
        .unwrap()
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn cmd_rules() {
        let img = image(&["sh"], None);
        let m = merge(&ContainerConfig::default(), Some(&img)).unwrap();
        assert_eq!((m.path.as_str(), m.args.len()), ("sh", 0));
        let user = ContainerConfig {
            cmd: Some(strs(&["echo", "hi"])),
            env: Some(strs(&["A=2", "B=3"])),
            labels: Some([("u".to_string(), "x".to_string())].into()),
            ..Default::default()
        };
        let m = merge(&user, Some(&img)).unwrap();
        assert_eq!(m.path, "echo");
        assert_eq!(m.args, strs(&["hi"]));
        assert_eq!(m.config.env.unwrap(), strs(&["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(m.config.working_dir.as_deref(), Some("/srv"));
        assert_eq!(m.config.exposed_ports.unwrap(), strs(&["80/tcp"]));
        assert_eq!(m.config.labels.unwrap().len(), 2);

        // A user entrypoint resets the image's cmd.
        let img = image(&["--help"], Some(&["/bin/tool"]));
        let user = ContainerConfig {
            entrypoint: Some(strs(&["/bin/sh"])),
            ..Default::default()
        };
        let m = merge(&user, Some(&img)).unwrap();
        assert_eq!((m.path.as_str(), m.args.len()), ("/bin/sh", 0));
        // Image entrypoint plus user cmd.
        let user = ContainerConfig {
            cmd: Some(strs(&["-v"])),
            ..Default::default()
        };
        let m = merge(&user, Some(&img)).unwrap();
        assert_eq!(
            (m.path.as_str(), m.args.clone()),
            ("/bin/tool", strs(&["-v"]))
        );
        // Nothing at all.
        let err = merge(&ContainerConfig::default(), None).unwrap_err();
        assert_eq!(err.to_string(), "no command specified");
        // `--entrypoint ""` with no cmd: nothing left.
        let user = ContainerConfig {
            entrypoint: Some(strs(&[""])),
            ..Default::default()
        };
        assert!(merge(&user, Some(&img)).is_err());
    }

    #[test]
    fn defaults() {
        let mut h = HostConfig::default();
        host_defaults(&mut h);
        assert_eq!(h.network_mode.as_deref(), Some("default"));
        assert_eq!(h.shm_size, Some(64 << 20));
        let log = h.log_config.unwrap();
        assert_eq!(log.typ.as_deref(), Some("json-file"));
        assert!(log.config.unwrap().is_empty());
    }
}
