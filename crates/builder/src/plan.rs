//! The build planner, as the legacy builder plans: global ARGs before the first FROM (usable in
//! FROM lines only, unless a stage declares them again), stages by name and index, `--target`
//! (every stage up to and including it is built, in order, as moby's legacy builder does),
//! `--build-arg` overrides and the predefined proxy args, the unconsumed-build-args warning,
//! `COPY --from` references and the `Step N/M` count.
//!
//! Owns: [`Plan`], [`ArgScope`] (a stage's visible build args). Must not know: images, the
//! engine, or how steps run (that is `execute` and the backend).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{BuildError, Result};
use crate::expand::Lexer;
use crate::parse::{Dockerfile, Instruction, Kind};

/// The build args Docker lets every build use without an ARG (`builtinAllowedBuildArgs`).
pub const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What the caller asks for.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `--target`: the last stage to build.
    pub target: Option<String>,
    /// `--build-arg k=v` (`None`: given without a value and not in the client's environment).
    pub build_args: BTreeMap<String, Option<String>>,
}

/// Where a stage's FROM points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`.
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (expanded).
    Image(String),
}

/// Where `COPY --from` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopySource {
    /// An earlier stage (by name or index).
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// One stage to build.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Position in the Dockerfile.
    pub index: usize,
    /// `AS name` (lowercased).
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: Instruction,
    /// The base, FROM's image expanded with the global args.
    pub base: Base,
    /// `--platform`, expanded with the global args.
    pub platform: Option<String>,
    /// The instructions after FROM.
    pub instructions: Vec<Instruction>,
}

/// A planned build.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The escape character (the executor's lexer uses it).
    pub escape: char,
    /// The ARG instructions before the first FROM (each is a step).
    pub meta_args: Vec<Instruction>,
    /// The global args after those ARGs ran: name → value (overrides applied).
    pub meta_values: BTreeMap<String, Option<String>>,
    /// The stages to build, in order (every stage up to the target).
    pub stages: Vec<Stage>,
    /// M in `Step N/M`.
    pub total_steps: usize,
    /// `--build-arg`s that no ARG consumes (sorted); see [`Plan::unconsumed_warning`].
    pub unconsumed: Vec<String>,
    /// The build args given.
    pub build_args: BTreeMap<String, Option<String>>,
    /// Every ARG name declared in a planned stage or globally.
    pub declared: BTreeSet<String>,
}

impl Plan {
    /// moby's warning line (with its newline) when build args went unused.
    pub fn unconsumed_warning(&self) -> Option<String> {
        if self.unconsumed.is_empty() {
            return None;
        }
        Some(format!(
            "[Warning] One or more build-args [{}] were not consumed\n",
            self.unconsumed.join(" ")
        ))
    }

    /// The stage that `COPY --from=<value>` (already expanded) means while building stage
    /// `current`: an earlier stage's name or index, else an image.
    pub fn copy_source(&self, value: &str, current: usize) -> CopySource {
        if let Ok(i) = value.parse::<usize>()
            && i < current
        {
            return CopySource::Stage(i);
        }
        match self.stages[..current.min(self.stages.len())]
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(value.to_ascii_lowercase().as_str()))
        {
            Some(s) => CopySource::Stage(s.index),
            None => CopySource::Image(value.to_string()),
        }
    }

    /// A fresh argument scope for a stage.
    pub fn arg_scope(&self) -> ArgScope<'_> {
        ArgScope {
            plan: self,
            allowed: BTreeMap::new(),
        }
    }
}

/// The build args one stage can see: those it declared with ARG, plus the predefined proxy args
/// given with `--build-arg`.
#[derive(Debug, Clone)]
pub struct ArgScope<'a> {
    plan: &'a Plan,
    allowed: BTreeMap<String, Option<String>>,
}

impl ArgScope<'_> {
    /// Records `ARG key[=default]` (the default already expanded).
    pub fn declare(&mut self, key: &str, default: Option<String>) {
        self.allowed.insert(key.to_string(), default);
    }

    /// A declared arg's value: `--build-arg` first, then the ARG default, then (for an ARG
    /// without default) the global ARG's value.
    fn value(&self, key: &str) -> Option<String> {
        if let Some(Some(v)) = self.plan.build_args.get(key) {
            return Some(v.clone());
        }
        match self.allowed.get(key) {
            Some(Some(v)) => Some(v.clone()),
            Some(None) => self.plan.meta_values.get(key).cloned().flatten(),
            None => None,
        }
    }

    /// The args with values that the stage sees and `env` (a config's `KEY=v` list) does not
    /// override, sorted by name, as `KEY=value`.
    pub fn visible(&self, env: &[String]) -> Vec<String> {
        let in_env = |k: &str| {
            env.iter()
                .any(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
        };
        let mut keys: BTreeSet<&str> = self.allowed.keys().map(String::as_str).collect();
        keys.extend(PREDEFINED_ARGS.iter().copied());
        keys.into_iter()
            .filter(|k| !in_env(k))
            .filter_map(|k| self.value(k).map(|v| format!("{k}={v}")))
            .collect()
    }

    /// The variables for substitution at a step: the config's env, then the visible args.
    pub fn vars(&self, env: &[String]) -> Vec<String> {
        let mut all = env.to_vec();
        all.extend(self.visible(env));
        all
    }

    /// The `|N k=v ...` prefix moby records for a RUN (declared args only; predefined proxy
    /// args appear only when declared), or empty when there are none.
    pub fn run_prefix(&self, env: &[String]) -> Vec<String> {
        let mut args: Vec<String> = self
            .visible(env)
            .into_iter()
            .filter(|kv| {
                let k = kv.split_once('=').map_or(kv.as_str(), |(k, _)| k);
                self.allowed.contains_key(k) || !PREDEFINED_ARGS.contains(&k)
            })
            .collect();
        if args.is_empty() {
            return args;
        }
        args.sort();
        let mut out = vec![format!("|{}", args.len())];
        out.extend(args);
        out
    }
}

/// Plans `df` for `opts`.
pub fn plan(df: &Dockerfile, opts: &BuildOptions) -> Result<Plan> {
    let lexer = Lexer::new(df.escape);
    let mut meta_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for ins in &df.instructions {
        match &ins.kind {
            Kind::From { name, platform, .. } => stages.push(Stage {
                index: stages.len(),
                name: name.clone(),
                from: ins.clone(),
                base: Base::Scratch,
                platform: platform.clone(),
                instructions: Vec::new(),
            }),
            Kind::Arg(_) if stages.is_empty() => meta_args.push(ins.clone()),
            _ => match stages.last_mut() {
                Some(stage) => stage.instructions.push(ins.clone()),
                None => return Err(BuildError::NoBuildStage),
            },
        }
    }
    if stages.is_empty() {
        return Err(BuildError::NoBuildStage);
    }
    for (i, s) in stages.iter().enumerate() {
        if s.name.is_some() && stages[..i].iter().any(|o| o.name == s.name) {
            // dockerd's text (it fails when it reaches the second FROM).
            return Err(BuildError::Invalid("a stage name already used".to_string()));
        }
    }

    // Targets: every stage up to the target, in order.
    if let Some(target) = opts.target.as_deref().filter(|t| !t.is_empty()) {
        let Some(ix) = stages.iter().position(|s| {
            s.name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(target))
        }) else {
            return Err(BuildError::UnknownTarget(target.to_string()));
        };
        stages.truncate(ix + 1);
    }

    // Global args, each default expanded with the ones before it (overrides applied).
    let mut meta_values: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut declared = BTreeSet::new();
    for ins in &meta_args {
        if let Kind::Arg(pairs) = &ins.kind {
            for (k, v) in pairs {
                let vars = meta_vars(&meta_values, &opts.build_args);
                let v = v
                    .as_deref()
                    .map(|v| lexer.word(v, &vars))
                    .transpose()
                    .map_err(|e| at_line(ins, e))?;
                let v = match opts.build_args.get(k) {
                    Some(Some(o)) => Some(o.clone()),
                    _ => v,
                };
                meta_values.insert(k.clone(), v);
                declared.insert(k.clone());
            }
        }
    }

    // FROM lines see the global args only.
    let vars = meta_vars(&meta_values, &opts.build_args);
    for i in 0..stages.len() {
        let (image, platform) = match &stages[i].from.kind {
            Kind::From {
                image, platform, ..
            } => (image.clone(), platform.clone()),
            _ => continue,
        };
        let base = lexer
            .word(&image, &vars)
            .map_err(|e| at_line(&stages[i].from, e))?;
        if base.is_empty() {
            return Err(BuildError::Invalid(format!(
                "base name ({image}) should not be blank"
            )));
        }
        stages[i].base = if base.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else if let Some(j) = stages[..i]
            .iter()
            .position(|s| s.name.as_deref() == Some(base.to_ascii_lowercase().as_str()))
        {
            Base::Stage(j)
        } else {
            Base::Image(base)
        };
        stages[i].platform = platform
            .map(|p| lexer.word(&p, &vars))
            .transpose()
            .map_err(|e| at_line(&stages[i].from, e))?;
        for ins in &stages[i].instructions {
            if let Kind::Arg(pairs) = &ins.kind {
                declared.extend(pairs.iter().map(|(k, _)| k.clone()));
            }
        }
    }

    let total_steps = meta_args.len()
        + stages
            .iter()
            .map(|s| 1 + s.instructions.len())
            .sum::<usize>();
    let unconsumed = opts
        .build_args
        .keys()
        .filter(|k| !declared.contains(*k) && !PREDEFINED_ARGS.contains(&k.as_str()))
        .cloned()
        .collect();
    Ok(Plan {
        escape: df.escape,
        meta_args,
        meta_values,
        stages,
        total_steps,
        unconsumed,
        build_args: opts.build_args.clone(),
        declared,
    })
}

/// The global args as variables (with overrides and given predefined args).
fn meta_vars(
    meta: &BTreeMap<String, Option<String>>,
    overrides: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for (k, v) in meta {
        let v = match overrides.get(k) {
            Some(Some(o)) => Some(o.clone()),
            _ => v.clone(),
        };
        if let Some(v) = v {
            vars.insert(k.clone(), v);
        }
    }
    for k in PREDEFINED_ARGS {
        if let Some(Some(v)) = overrides.get(*k) {
            vars.entry(k.to_string()).or_insert_with(|| v.clone());
        }
    }
    vars
}

fn at_line(ins: &Instruction, e: BuildError) -> BuildError {
    BuildError::syntax(ins.line, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn planned(text: &str, target: Option<&str>, args: &[(&str, Option<&str>)]) -> Result<Plan> {
        let df = parse("Dockerfile", text)?;
        let opts = BuildOptions {
            target: target.map(str::to_string),
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
                .collect(),
        };
        plan(&df, &opts)
    }

    const MULTI: &str = "ARG V=1\nARG W\nFROM scratch AS a\nARG V\nENV E=$V\nLABEL x=$V\n\
                         FROM scratch AS b\nLABEL z=1\nFROM scratch\nLABEL q=$V\n";

    #[test]
    fn step_counts_follow_the_target() {
        // Checked against dockerd 20.10's legacy builder: 8 steps to `b`, 10 in all.
        let p = planned(MULTI, Some("b"), &[]).unwrap();
        assert_eq!(p.total_steps, 8);
        assert_eq!(p.stages.len(), 2);
        let p = planned(MULTI, None, &[]).unwrap();
        assert_eq!(p.total_steps, 10);
        assert_eq!(p.stages.len(), 3);
        assert_eq!(p.stages[1].name.as_deref(), Some("b"));
    }

    #[test]
    fn unknown_target_and_no_stage() {
        let e = planned(MULTI, Some("nope"), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to reach build target nope in Dockerfile"
        );
        let e = planned("RUN x\n", None, &[]).unwrap_err();
        assert_eq!(e.to_string(), "no build stage in current context");
        let e = planned("ARG a\nLABEL a=b\n", None, &[]).unwrap_err();
        assert_eq!(e.to_string(), "no build stage in current context");
        let e = planned("FROM x AS a\nFROM y AS A\n", None, &[]).unwrap_err();
        assert_eq!(e.to_string(), "a stage name already used");
        // Target names are matched without regard to case.
        assert_eq!(planned(MULTI, Some("B"), &[]).unwrap().stages.len(), 2);
    }

    #[test]
    fn unconsumed_build_args() {
        let p = planned(
            MULTI,
            Some("b"),
            &[
                ("foo", Some("1")),
                ("HTTP_PROXY", Some("x")),
                ("V", Some("2")),
                ("bar", None),
            ],
        )
        .unwrap();
        assert_eq!(p.unconsumed, vec!["bar".to_string(), "foo".to_string()]);
        assert_eq!(
            p.unconsumed_warning().unwrap(),
            "[Warning] One or more build-args [bar foo] were not consumed\n"
        );
        // An ARG in a stage after the target does not consume.
        let p = planned(
            "FROM x AS a\nFROM x AS b\nARG late\n",
            Some("a"),
            &[("late", Some("1"))],
        )
        .unwrap();
        assert_eq!(p.unconsumed, vec!["late".to_string()]);
        let p = planned(MULTI, None, &[]).unwrap();
        assert!(p.unconsumed_warning().is_none());
    }

    #[test]
    fn global_args_in_from_and_overrides() {
        let text = "ARG TAG=12\nARG IMG=debian:${TAG}\nFROM $IMG AS one\nFROM one\n\
                    FROM --platform=$P busybox\n";
        let p = planned(text, None, &[]).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("debian:12".into()));
        assert_eq!(p.stages[1].base, Base::Stage(0));
        assert_eq!(p.stages[2].platform.as_deref(), Some(""));
        let p = planned(
            text,
            None,
            &[("TAG", Some("11")), ("P", Some("linux/arm64"))],
        )
        .unwrap();
        assert_eq!(p.stages[0].base, Base::Image("debian:11".into()));
        // P is not declared globally: the FROM line does not see it.
        assert_eq!(p.stages[2].platform.as_deref(), Some(""));
        let p = planned(text, None, &[("IMG", Some("alpine"))]).unwrap();
        assert_eq!(p.stages[0].base, Base::Image("alpine".into()));
        let e = planned("ARG X\nFROM $X\n", None, &[]).unwrap_err();
        assert_eq!(e.to_string(), "base name ($X) should not be blank");
        assert_eq!(
            planned("FROM SCRATCH\n", None, &[]).unwrap().stages[0].base,
            Base::Scratch
        );
    }

    #[test]
    fn stage_scope_needs_redeclaration() {
        let p = planned(MULTI, None, &[]).unwrap();
        let mut scope = p.arg_scope();
        // Not declared in the stage: the global V is invisible.
        assert!(scope.visible(&[]).is_empty());
        scope.declare("V", None);
        assert_eq!(scope.visible(&[]), vec!["V=1".to_string()]);
        // ENV wins over ARG.
        assert!(scope.visible(&["V=env".to_string()]).is_empty());
        // A default in the stage, overridden by --build-arg.
        let p = planned(MULTI, None, &[("V", Some("9")), ("http_proxy", Some("p"))]).unwrap();
        let mut scope = p.arg_scope();
        scope.declare("V", Some("3".into()));
        assert_eq!(
            scope.visible(&[]),
            vec!["V=9".to_string(), "http_proxy=p".to_string()]
        );
        // The RUN prefix leaves undeclared proxy args out.
        assert_eq!(
            scope.run_prefix(&[]),
            vec!["|1".to_string(), "V=9".to_string()]
        );
        scope.declare("http_proxy", None);
        assert_eq!(scope.run_prefix(&[]).len(), 3);
        let empty = p.arg_scope();
        assert!(empty.run_prefix(&[]).is_empty());
    }

    #[test]
    fn copy_from_sources() {
        let text = "FROM x AS Build\nFROM y\nCOPY --from=build a b\nFROM z\n";
        let p = planned(text, None, &[]).unwrap();
        assert_eq!(p.copy_source("build", 1), CopySource::Stage(0));
        assert_eq!(p.copy_source("BUILD", 1), CopySource::Stage(0));
        assert_eq!(p.copy_source("0", 1), CopySource::Stage(0));
        assert_eq!(p.copy_source("1", 1), CopySource::Image("1".into()));
        assert_eq!(
            p.copy_source("busybox", 2),
            CopySource::Image("busybox".into())
        );
    }
}
