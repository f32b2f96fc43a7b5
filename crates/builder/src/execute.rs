//! The executor: walks a [`Plan`] step by step as the legacy builder does, substituting
//! variables, editing the image config, looking up and recording cache entries, and asking the
//! [`BuildBackend`] to run, copy and commit. It words the stream as moby does: `Step N/M : …`,
//! ` ---> Using cache`, ` ---> Running in <id>`, the RUN output, `Removing intermediate
//! container <id>`, ` ---> <id>`, the unconsumed-build-args warning, the aux image ID,
//! `Successfully built <id>` and `Successfully tagged <t>`.
//!
//! Differences from moby, chosen: config-only steps (ENV, LABEL, CMD…) are committed without an
//! intermediate container (so they print no `Running in`); a failed RUN's container is removed
//! when `rm` is set (moby keeps it unless `forcerm`), so a failed build leaks nothing.
//!
//! Owns: step semantics and messages. Must not know: how containers, layers and images are
//! made (the backend), HTTP or JSON streams (the daemon wraps [`Event`]s).

use std::collections::BTreeMap;

use crate::backend::{
    BuildBackend, CommitRequest, CopyFrom, CopyRequest, HealthConfig, ImageState, RunEvent,
    RunRequest,
};
use crate::cache::step_key;
use crate::error::{BuildError, Result};
use crate::expand::Lexer;
use crate::parse::{CommandLine, CopySpec, Healthcheck, Instruction, Kind, parse_line};
use crate::plan::{ArgScope, Base, CopySource, Plan};

/// The PATH a stage gets when its base sets none (`system.DefaultPathEnv` on Linux).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How to build.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// `nocache`.
    pub no_cache: bool,
    /// `pull`: always pull base images.
    pub pull: bool,
    /// `rm` (default true): remove intermediate containers.
    pub remove: bool,
    /// `forcerm`: remove them even on failure.
    pub force_remove: bool,
    /// `t`: tags for the result.
    pub tags: Vec<String>,
    /// `labels`: added by a last LABEL step, as moby does.
    pub labels: BTreeMap<String, String>,
    /// `networkmode` for RUN.
    pub network: Option<String>,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            no_cache: false,
            pull: false,
            remove: true,
            force_remove: false,
            tags: Vec::new(),
            labels: BTreeMap::new(),
            network: None,
        }
    }
}

/// What the build reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Text for the `stream` field (lines end with `\n`; RUN output as it comes).
    Stream(String),
    /// The result's image ID (`aux: {"ID": ...}`).
    Aux(String),
}

/// moby's `TruncateID`: the hex without `sha256:`, 12 characters.
pub fn short_id(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    &hex[..hex.len().min(12)]
}

/// Runs the build; returns the final image's ID.
pub fn execute(
    backend: &mut dyn BuildBackend,
    plan: &Plan,
    opts: &ExecOptions,
    emit: &mut dyn FnMut(Event),
) -> Result<String> {
    let mut ex = Executor {
        backend,
        plan,
        opts,
        emit,
        lexer: Lexer::new(plan.escape),
        step: 0,
        total: plan.total_steps + usize::from(!opts.labels.is_empty()),
        stages: Vec::new(),
    };
    ex.run()
}

struct Executor<'a, 'p> {
    backend: &'a mut dyn BuildBackend,
    plan: &'p Plan,
    opts: &'a ExecOptions,
    emit: &'a mut dyn FnMut(Event),
    lexer: Lexer,
    step: usize,
    total: usize,
    stages: Vec<ImageState>,
}

/// The state of the stage being built.
struct StageState<'p> {
    index: usize,
    image: ImageState,
    scope: ArgScope<'p>,
    cmd_set: bool,
}

impl<'p> Executor<'_, 'p> {
    fn say(&mut self, text: String) {
        (self.emit)(Event::Stream(text));
    }

    fn step_line(&mut self, original: &str) {
        self.step += 1;
        let line = format!("Step {}/{} : {original}\n", self.step, self.total);
        self.say(line);
    }

    fn run(&mut self) -> Result<String> {
        let plan = self.plan;
        for ins in &plan.meta_args {
            self.step_line(&ins.original);
        }
        let last = plan.stages.len().saturating_sub(1);
        for (si, stage) in plan.stages.iter().enumerate() {
            self.step_line(&stage.from.original);
            let mut image = match &stage.base {
                Base::Scratch => ImageState::default(),
                Base::Stage(j) => self.stages.get(*j).cloned().unwrap_or_default(),
                Base::Image(r) => {
                    self.backend
                        .base_image(r, stage.platform.as_deref(), self.opts.pull)?
                }
            };
            let id = image.id.as_deref().map(short_id).unwrap_or("").to_string();
            self.say(format!(" ---> {id}\n"));
            if !image.config.env.iter().any(|e| e.starts_with("PATH=")) {
                image.config.env.push(format!("PATH={DEFAULT_PATH}"));
            }
            let triggers = std::mem::take(&mut image.config.on_build);
            let mut st = StageState {
                index: si,
                image,
                scope: plan.arg_scope(),
                cmd_set: false,
            };
            if !triggers.is_empty() {
                let s = if triggers.len() == 1 { "" } else { "s" };
                self.say(format!("# Executing {} build trigger{s}\n", triggers.len()));
                for t in &triggers {
                    let ins = parse_line(t, plan.escape, stage.from.line)?;
                    self.dispatch(&mut st, &ins)?;
                }
            }
            for ins in &stage.instructions {
                self.step_line(&ins.original);
                self.dispatch(&mut st, ins)?;
            }
            if si == last && !self.opts.labels.is_empty() {
                let mut line = String::from("LABEL");
                for (k, v) in &self.opts.labels {
                    line.push_str(&format!(" {}='{v}'", go_quote(k)));
                }
                self.step_line(&line);
                st.image.config.labels.extend(self.opts.labels.clone());
                let text = format!("LABEL {}", kv_text(&self.opts.labels));
                self.meta_commit(&mut st, text, None)?;
            }
            self.stages.push(st.image);
        }
        let id = self
            .stages
            .last()
            .and_then(|s| s.id.clone())
            .ok_or_else(|| {
                BuildError::Invalid("No image was generated. Is your Dockerfile empty?".into())
            })?;
        if let Some(w) = plan.unconsumed_warning() {
            self.say(w);
        }
        (self.emit)(Event::Aux(id.clone()));
        self.say(format!("Successfully built {}\n", short_id(&id)));
        for t in &self.opts.tags {
            self.backend.tag(&id, t)?;
            self.say(format!("Successfully tagged {t}\n"));
        }
        Ok(id)
    }

    fn dispatch(&mut self, st: &mut StageState<'p>, ins: &Instruction) -> Result<()> {
        let vars = st.scope.vars(&st.image.config.env);
        let lexer = self.lexer;
        let word = |s: &str| {
            lexer
                .word(s, &vars)
                .map_err(|e| BuildError::syntax(ins.line, e.to_string()))
        };
        match &ins.kind {
            Kind::From { .. } => Err(BuildError::syntax(
                ins.line,
                "FROM isn't allowed as an ONBUILD trigger",
            )),
            Kind::Env(pairs) => {
                let mut done = Vec::new();
                for (k, v) in pairs {
                    let (k, v) = (word(k)?, word(v)?);
                    set_env(&mut st.image.config.env, &k, &v);
                    done.push(format!("{k}={v}"));
                }
                self.meta_commit(st, format!("ENV {}", done.join(" ")), None)
            }
            Kind::Label(pairs) => {
                let mut done = BTreeMap::new();
                for (k, v) in pairs {
                    let (k, v) = (word(k)?, word(v)?);
                    st.image.config.labels.insert(k.clone(), v.clone());
                    done.insert(k, v);
                }
                self.meta_commit(st, format!("LABEL {}", kv_text(&done)), None)
            }
            Kind::Arg(pairs) => {
                let mut done = Vec::new();
                for (k, v) in pairs {
                    let v = v.as_deref().map(word).transpose()?;
                    done.push(match &v {
                        Some(v) => format!("{k}={v}"),
                        None => k.clone(),
                    });
                    st.scope.declare(k, v);
                }
                self.meta_commit(st, format!("ARG {}", done.join(" ")), None)
            }
            Kind::Cmd(line) => {
                let argv = self.argv(st, line);
                st.image.config.cmd = Some(argv.clone());
                st.cmd_set = true;
                self.meta_commit(st, format!("CMD {}", go_quote_list(&argv)), None)
            }
            Kind::Entrypoint(line) => {
                let argv = self.argv(st, line);
                st.image.config.entrypoint = Some(argv.clone());
                if !st.cmd_set {
                    st.image.config.cmd = None;
                }
                self.meta_commit(st, format!("ENTRYPOINT {}", go_quote_list(&argv)), None)
            }
            Kind::Workdir(p) => {
                let p = word(p)?;
                let dir = if p.starts_with('/') {
                    crate::ignore::clean(&p)
                } else {
                    let base = match st.image.config.working_dir.as_str() {
                        "" => "/",
                        w => w,
                    };
                    crate::ignore::clean(&format!("{base}/{p}"))
                };
                st.image.config.working_dir = dir.clone();
                self.meta_commit(st, format!("WORKDIR {dir}"), Some(dir.clone()))
            }
            Kind::User(u) => {
                let u = word(u)?;
                st.image.config.user = u.clone();
                self.meta_commit(st, format!("USER {u}"), None)
            }
            Kind::Expose(specs) => {
                let mut ports = Vec::new();
                for s in specs {
                    for w in lexer
                        .words(s, &vars)
                        .map_err(|e| BuildError::syntax(ins.line, e.to_string()))?
                    {
                        ports.extend(expand_port(&w)?);
                    }
                }
                ports.sort();
                ports.dedup();
                for p in &ports {
                    st.image
                        .config
                        .exposed_ports
                        .insert(p.clone(), serde_json::json!({}));
                }
                self.meta_commit(st, format!("EXPOSE {}", ports.join(" ")), None)
            }
            Kind::Volume(vols) => {
                let mut done = Vec::new();
                for v in vols {
                    let v = word(v)?;
                    if v.trim().is_empty() {
                        return Err(BuildError::Invalid(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    st.image
                        .config
                        .volumes
                        .insert(v.clone(), serde_json::json!({}));
                    done.push(v);
                }
                self.meta_commit(st, format!("VOLUME [{}]", done.join(" ")), None)
            }
            Kind::StopSignal(s) => {
                let s = word(s)?;
                st.image.config.stop_signal = Some(s.clone());
                self.meta_commit(st, format!("STOPSIGNAL {s}"), None)
            }
            Kind::Healthcheck(h) => {
                let cfg = match h {
                    Healthcheck::None => HealthConfig {
                        test: vec!["NONE".into()],
                        ..Default::default()
                    },
                    Healthcheck::Cmd {
                        test,
                        interval,
                        timeout,
                        start_period,
                        start_interval,
                        retries,
                    } => HealthConfig {
                        test: test.clone(),
                        interval: interval.as_nanos() as i64,
                        timeout: timeout.as_nanos() as i64,
                        start_period: start_period.as_nanos() as i64,
                        start_interval: start_interval.as_nanos() as i64,
                        retries: *retries,
                    },
                };
                let text = serde_json::to_string(&cfg).unwrap_or_default();
                st.image.config.healthcheck = Some(cfg);
                self.meta_commit(st, format!("HEALTHCHECK {text}"), None)
            }
            Kind::Shell(args) => {
                st.image.config.shell = Some(args.clone());
                self.meta_commit(st, format!("SHELL {}", go_quote_list(args)), None)
            }
            Kind::Onbuild(expr) => {
                st.image.config.on_build.push(expr.clone());
                self.meta_commit(st, format!("ONBUILD {expr}"), None)
            }
            Kind::Maintainer(m) => {
                st.image.author = Some(m.clone());
                self.meta_commit(st, format!("MAINTAINER {m}"), None)
            }
            Kind::Run { cmd, .. } => self.run_step(st, cmd),
            Kind::Copy(spec) => self.copy_step(st, ins, spec, false, &word),
            Kind::Add(spec) => self.copy_step(st, ins, spec, true, &word),
        }
    }

    /// The argv of a CMD/ENTRYPOINT/RUN: exec form as is, shell form behind the SHELL.
    fn argv(&self, st: &StageState<'_>, line: &CommandLine) -> Vec<String> {
        if line.json {
            return line.args.clone();
        }
        let mut argv = st
            .image
            .config
            .shell
            .clone()
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()]);
        argv.extend(line.args.iter().cloned());
        argv
    }

    fn parent(st: &StageState<'_>) -> String {
        st.image.id.clone().unwrap_or_default()
    }

    /// A cache hit: prints it and moves the stage onto the image.
    fn try_cache(&mut self, st: &mut StageState<'_>, key: &crate::cache::CacheKey) -> Result<bool> {
        if self.opts.no_cache {
            return Ok(false);
        }
        let Some(id) = self.backend.cache_lookup(key)? else {
            return Ok(false);
        };
        self.say(" ---> Using cache\n".into());
        self.say(format!(" ---> {}\n", short_id(&id)));
        st.image.id = Some(id);
        Ok(true)
    }

    fn finish_step(
        &mut self,
        st: &mut StageState<'_>,
        key: &crate::cache::CacheKey,
        id: String,
    ) -> Result<()> {
        self.backend.cache_record(key, &id)?;
        self.say(format!(" ---> {}\n", short_id(&id)));
        st.image.id = Some(id);
        Ok(())
    }

    fn meta_commit(
        &mut self,
        st: &mut StageState<'_>,
        text: String,
        mkdir: Option<String>,
    ) -> Result<()> {
        let created_by = format!("/bin/sh -c #(nop)  {text}");
        let config_json = serde_json::to_string(&st.image.config).unwrap_or_default();
        let key = step_key(&Self::parent(st), &created_by, &[], Some(&config_json));
        if self.try_cache(st, &key)? {
            return Ok(());
        }
        let id = self.backend.commit(&CommitRequest {
            parent: st.image.id.clone(),
            container: None,
            config: st.image.config.clone(),
            author: st.image.author.clone(),
            created_by,
            mkdir,
        })?;
        self.finish_step(st, &key, id)
    }

    fn remove(&mut self, id: &str) -> Result<()> {
        self.backend.remove_container(id)?;
        self.say(format!(
            "Removing intermediate container {}\n",
            short_id(id)
        ));
        Ok(())
    }

    fn run_step(&mut self, st: &mut StageState<'_>, line: &CommandLine) -> Result<()> {
        let argv = self.argv(st, line);
        let env = st.image.config.env.clone();
        let prefix = st.scope.run_prefix(&env);
        let mut saved = prefix.clone();
        saved.extend(argv.iter().cloned());
        let created_by = saved.join(" ");
        let key = step_key(
            &Self::parent(st),
            &format!("RUN {}", serde_json::to_string(&argv).unwrap_or_default()),
            &prefix,
            None,
        );
        if self.try_cache(st, &key)? {
            return Ok(());
        }
        let mut config = st.image.config.clone();
        config.env.extend(st.scope.visible(&env));
        let req = RunRequest {
            image: st.image.id.clone(),
            config,
            cmd: argv.clone(),
            network: self.opts.network.clone(),
        };
        let mut created: Option<String> = None;
        let emit = &mut *self.emit;
        let result = self.backend.run(&req, &mut |ev| match ev {
            RunEvent::Created(id) => {
                emit(Event::Stream(format!(
                    " ---> Running in {}\n",
                    short_id(&id)
                )));
                created = Some(id);
            }
            RunEvent::Output(bytes) => {
                emit(Event::Stream(String::from_utf8_lossy(&bytes).into_owned()));
            }
        });
        let cleanup = self.opts.remove || self.opts.force_remove;
        let outcome = match result {
            Ok(o) => o,
            Err(e) => {
                if let (Some(id), true) = (created, cleanup) {
                    let _ = self.remove(&id);
                }
                return Err(e);
            }
        };
        if outcome.exit_code != 0 {
            if cleanup {
                let _ = self.remove(&outcome.container);
            }
            return Err(BuildError::RunFailed {
                command: argv.join(" "),
                code: outcome.exit_code,
            });
        }
        let committed = self.backend.commit(&CommitRequest {
            parent: st.image.id.clone(),
            container: Some(outcome.container.clone()),
            config: st.image.config.clone(),
            author: st.image.author.clone(),
            created_by,
            mkdir: None,
        });
        if self.opts.remove || self.opts.force_remove {
            self.remove(&outcome.container)?;
        }
        self.finish_step(st, &key, committed?)
    }

    fn copy_step(
        &mut self,
        st: &mut StageState<'_>,
        ins: &Instruction,
        spec: &CopySpec,
        add: bool,
        word: &dyn Fn(&str) -> Result<String>,
    ) -> Result<()> {
        let from = match &spec.from {
            None => CopyFrom::Context,
            Some(f) => {
                let f = word(f)?;
                let id = match self.plan.copy_source(&f, st.index) {
                    CopySource::Stage(i) => self.stages.get(i).and_then(|s| s.id.clone()),
                    CopySource::Image(r) => self.backend.base_image(&r, None, false)?.id,
                };
                CopyFrom::Image(id.ok_or_else(|| {
                    BuildError::Invalid(format!(
                        "invalid from flag value {f}: the stage has no filesystem"
                    ))
                })?)
            }
        };
        let sources = spec
            .sources
            .iter()
            .map(|s| word(s))
            .collect::<Result<Vec<_>>>()?;
        let dest = word(&spec.dest)?;
        let dest = normalize_dest(&st.image.config.working_dir, &dest);
        let chown = spec.chown.as_deref().map(word).transpose()?;
        let chmod = spec.chmod.as_deref().map(word).transpose()?;
        if let Some(m) = &chmod
            && (m.is_empty() || u32::from_str_radix(m, 8).map_or(true, |v| v > 0o7777))
        {
            return Err(BuildError::syntax(
                ins.line,
                format!("invalid chmod parameter: {m}"),
            ));
        }
        let hash = self.backend.source_hash(&from, &sources, add)?;
        let mut flags = String::new();
        if let Some(c) = &chown {
            flags.push_str(&format!("--chown={c} "));
        }
        if let Some(m) = &chmod {
            flags.push_str(&format!("--chmod={m} "));
        }
        let keyword = if add { "ADD" } else { "COPY" };
        let created_by = format!("/bin/sh -c #(nop) {keyword} {flags}{hash} in {dest} ");
        let key = step_key(&Self::parent(st), &created_by, &[], Some(&hash));
        if self.try_cache(st, &key)? {
            return Ok(());
        }
        let id = self.backend.copy(&CopyRequest {
            parent: st.image.id.clone(),
            config: st.image.config.clone(),
            author: st.image.author.clone(),
            from,
            sources,
            dest,
            chown,
            chmod,
            add,
            created_by,
        })?;
        self.finish_step(st, &key, id)
    }
}

fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

fn kv_text(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{}={}", go_quote(k), go_quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Go's `%q` for a string (JSON's escaping is the same for what Dockerfiles hold).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Go's `%q` for a `[]string`: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| go_quote(s))
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// moby's `normalizeDest`: relative destinations are under the WORKDIR; a trailing `/` stays.
fn normalize_dest(workdir: &str, dest: &str) -> String {
    if dest.starts_with('/') {
        return dest.to_string();
    }
    let base = if workdir.is_empty() { "/" } else { workdir };
    let mut out = crate::ignore::clean(&format!("{base}/{dest}"));
    if (dest.ends_with('/') || dest == "." || dest.ends_with("/.")) && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// `EXPOSE` words to `port/proto` keys (`nat.ParsePortSpecs` for the container side):
/// `80`, `80/udp`, `8000-8002/tcp`.
pub fn expand_port(spec: &str) -> Result<Vec<String>> {
    let (ports, proto) = match spec.rsplit_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(BuildError::Invalid(format!("Invalid proto: {proto}")));
    }
    // ip:hostPort:containerPort forms: the container port is the last part.
    let container = ports.rsplit(':').next().unwrap_or(ports);
    let bad = || BuildError::Invalid(format!("Invalid containerPort: {container}"));
    let (lo, hi) = match container.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = container.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(BuildError::Invalid(format!(
            "Invalid range specified for container port: {container}"
        )));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

#[cfg(test)]
#[path = "execute_tests.rs"]
mod tests;
