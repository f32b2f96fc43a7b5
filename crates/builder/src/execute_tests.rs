//! Executor tests against a fake backend that records every call.

use std::collections::{BTreeMap, HashMap};

use super::*;
use crate::backend::{ImageConfig, RunOutcome};
use crate::cache::CacheKey;
use crate::parse::parse;
use crate::plan::{BuildOptions, plan};

#[derive(Default)]
struct Fake {
    next: u64,
    images: HashMap<String, ImageState>,
    cache: HashMap<CacheKey, String>,
    calls: Vec<String>,
    runs: Vec<RunRequest>,
    copies: Vec<CopyRequest>,
    commits: Vec<CommitRequest>,
    removed: Vec<String>,
    tags: Vec<(String, String)>,
    content: String,
}

impl Fake {
    fn new() -> Self {
        let mut f = Fake {
            content: "sha256:ctx1".into(),
            ..Default::default()
        };
        f.images.insert(
            "busybox".into(),
            ImageState {
                id: Some(format!("sha256:{}", "b".repeat(64))),
                config: ImageConfig {
                    env: vec!["PATH=/bin".into()],
                    cmd: Some(vec!["sh".into()]),
                    ..Default::default()
                },
                author: None,
            },
        );
        f
    }

    fn id(&mut self, prefix: char) -> String {
        self.next += 1;
        format!("sha256:{prefix}{:063x}", self.next)
    }

    fn reset_log(&mut self) {
        self.calls.clear();
        self.runs.clear();
        self.copies.clear();
        self.commits.clear();
        self.removed.clear();
    }
}

impl BuildBackend for Fake {
    fn base_image(&mut self, r: &str, platform: Option<&str>, pull: bool) -> Result<ImageState> {
        self.calls.push(format!("base {r} {platform:?} {pull}"));
        self.images
            .get(r)
            .cloned()
            .ok_or_else(|| BuildError::Backend(format!("pull access denied for {r}")))
    }

    fn source_hash(&mut self, from: &CopyFrom, sources: &[String], add: bool) -> Result<String> {
        self.calls.push(format!("hash {from:?} {sources:?} {add}"));
        Ok(self.content.clone())
    }

    fn run(&mut self, req: &RunRequest, events: &mut dyn FnMut(RunEvent)) -> Result<RunOutcome> {
        let c = self.id('c');
        self.calls.push(format!("run {:?}", req.cmd));
        self.runs.push(req.clone());
        events(RunEvent::Created(c.clone()));
        events(RunEvent::Output(b"output line\n".to_vec()));
        let code = if req.cmd.iter().any(|a| a.contains("false")) {
            3
        } else {
            0
        };
        Ok(RunOutcome {
            container: c,
            exit_code: code,
        })
    }

    fn copy(&mut self, req: &CopyRequest) -> Result<String> {
        self.calls.push(format!("copy {:?}", req.sources));
        self.copies.push(req.clone());
        Ok(self.id('a'))
    }

    fn commit(&mut self, req: &CommitRequest) -> Result<String> {
        self.calls.push(format!("commit {}", req.created_by));
        self.commits.push(req.clone());
        let id = self.id('i');
        self.images.insert(
            id.clone(),
            ImageState {
                id: Some(id.clone()),
                config: req.config.clone(),
                author: req.author.clone(),
            },
        );
        Ok(id)
    }

    fn remove_container(&mut self, id: &str) -> Result<()> {
        self.removed.push(id.to_string());
        Ok(())
    }

    fn cache_lookup(&mut self, key: &CacheKey) -> Result<Option<String>> {
        Ok(self.cache.get(key).cloned())
    }

    fn cache_record(&mut self, key: &CacheKey, image: &str) -> Result<()> {
        self.cache.insert(key.clone(), image.to_string());
        Ok(())
    }

    fn tag(&mut self, image: &str, reference: &str) -> Result<()> {
        self.tags.push((image.into(), reference.into()));
        Ok(())
    }
}

struct Outcome {
    id: Result<String>,
    text: String,
    aux: Vec<String>,
}

fn build(fake: &mut Fake, text: &str, bo: BuildOptions, eo: &ExecOptions) -> Outcome {
    let df = parse("Dockerfile", text).unwrap();
    let p = plan(&df, &bo).unwrap();
    let mut out = String::new();
    let mut aux = Vec::new();
    let id = execute(fake, &p, eo, &mut |e| match e {
        Event::Stream(s) => out.push_str(&s),
        Event::Aux(a) => aux.push(a),
    });
    Outcome { id, text: out, aux }
}

const TEN: &str = "FROM busybox
RUN echo one > /one
ENV GREETING=\"hello world\" PATH=/usr/bin:$PATH
WORKDIR app
COPY . .
CMD echo $GREETING
EXPOSE 8080 53/udp
LABEL version=1.0 who=$GREETING
USER nobody
ENTRYPOINT [\"/entry\"]
";

#[test]
fn ten_steps_then_fully_cached() {
    let mut fake = Fake::new();
    let eo = ExecOptions {
        tags: vec!["app:latest".into()],
        ..Default::default()
    };
    let first = build(&mut fake, TEN, BuildOptions::default(), &eo);
    let id = first.id.unwrap();
    let t = &first.text;
    assert!(t.starts_with(&format!(
        "Step 1/10 : FROM busybox\n ---> {}\n",
        "b".repeat(12)
    )));
    assert!(t.contains("Step 2/10 : RUN echo one > /one\n ---> Running in c"));
    assert!(t.contains("output line\nRemoving intermediate container c"));
    assert!(t.contains("Step 10/10 : ENTRYPOINT [\"/entry\"]\n"));
    assert!(t.ends_with(&format!(
        "Successfully built {}\nSuccessfully tagged app:latest\n",
        short_id(&id)
    )));
    assert!(!t.contains("Using cache"));
    assert_eq!(first.aux, vec![id.clone()]);
    assert_eq!(fake.tags, vec![(id.clone(), "app:latest".to_string())]);
    assert_eq!(fake.runs.len(), 1);
    assert_eq!(fake.runs[0].cmd, vec!["/bin/sh", "-c", "echo one > /one"]);
    assert_eq!(fake.removed.len(), 1);
    // COPY . . lands in the WORKDIR (relative to /).
    assert_eq!(fake.copies[0].dest, "/app/");
    assert_eq!(fake.copies[0].from, CopyFrom::Context);
    // WORKDIR creates its directory.
    assert!(
        fake.commits
            .iter()
            .any(|c| c.mkdir.as_deref() == Some("/app"))
    );

    let final_config = &fake.images[&id].config;
    assert_eq!(
        final_config.env,
        vec!["PATH=/usr/bin:/bin", "GREETING=hello world"]
    );
    assert_eq!(final_config.working_dir, "/app");
    assert_eq!(final_config.user, "nobody");
    // ENTRYPOINT after CMD in the same stage keeps the CMD.
    assert_eq!(
        final_config.cmd,
        Some(vec!["/bin/sh".into(), "-c".into(), "echo $GREETING".into()])
    );
    assert_eq!(final_config.entrypoint, Some(vec!["/entry".into()]));
    assert_eq!(
        final_config.exposed_ports.keys().collect::<Vec<_>>(),
        vec!["53/udp", "8080/tcp"]
    );
    assert_eq!(final_config.labels["who"], "hello world");

    // Rebuild: every step after FROM is a cache hit, nothing runs, same image.
    fake.reset_log();
    let again = build(&mut fake, TEN, BuildOptions::default(), &eo);
    assert_eq!(again.id.unwrap(), id);
    assert_eq!(again.text.matches(" ---> Using cache\n").count(), 9);
    assert!(fake.runs.is_empty() && fake.copies.is_empty() && fake.commits.is_empty());

    // New context content: steps before COPY hit, COPY and after miss.
    fake.reset_log();
    fake.content = "sha256:ctx2".into();
    let changed = build(&mut fake, TEN, BuildOptions::default(), &eo);
    assert_ne!(changed.id.unwrap(), id);
    assert_eq!(changed.text.matches(" ---> Using cache\n").count(), 3);
    assert_eq!(fake.copies.len(), 1);

    // --no-cache: nothing from the cache.
    fake.reset_log();
    let nc = ExecOptions {
        no_cache: true,
        ..Default::default()
    };
    let fresh = build(&mut fake, TEN, BuildOptions::default(), &nc);
    assert!(fresh.id.is_ok());
    assert!(!fresh.text.contains("Using cache"));
    assert_eq!(fake.runs.len(), 1);
}

#[test]
fn multi_stage_with_target() {
    let text = "FROM busybox AS build
RUN make
FROM scratch AS final
COPY --from=build /out/app /app
FROM busybox AS test
RUN false
";
    let mut fake = Fake::new();
    let bo = BuildOptions {
        target: Some("final".into()),
        ..Default::default()
    };
    let out = build(&mut fake, text, bo, &ExecOptions::default());
    let id = out.id.unwrap();
    assert!(
        out.text
            .contains("Step 4/4 : COPY --from=build /out/app /app\n")
    );
    // The `test` stage is past the target: never run.
    assert_eq!(fake.runs.len(), 1);
    let build_image = fake.commits[0].clone();
    assert_eq!(build_image.created_by, "/bin/sh -c make");
    let copy = &fake.copies[0];
    assert!(matches!(&copy.from, CopyFrom::Image(i) if i.starts_with("sha256:i")));
    assert_eq!(copy.parent, None, "scratch has no parent");
    assert_eq!(copy.dest, "/app");
    assert!(
        out.text
            .contains("Step 3/4 : FROM scratch AS final\n ---> \n")
    );
    assert!(id.starts_with("sha256:a"));

    // By index too, and an image reference.
    let mut fake = Fake::new();
    let text = "FROM busybox\nRUN make\nFROM scratch\nCOPY --from=0 /a /b\nCOPY --from=busybox /bin/sh /sh\n";
    let out = build(
        &mut fake,
        text,
        BuildOptions::default(),
        &ExecOptions::default(),
    );
    assert!(out.id.is_ok());
    assert!(matches!(&fake.copies[0].from, CopyFrom::Image(i) if i.starts_with("sha256:i")));
    assert_eq!(
        fake.copies[1].from,
        CopyFrom::Image(format!("sha256:{}", "b".repeat(64)))
    );
}

#[test]
fn failing_run_reports_and_cleans_up() {
    let mut fake = Fake::new();
    let out = build(
        &mut fake,
        "FROM busybox\nRUN false\nRUN never\n",
        BuildOptions::default(),
        &ExecOptions::default(),
    );
    let err = out.id.unwrap_err();
    assert_eq!(
        err.to_string(),
        "The command '/bin/sh -c false' returned a non-zero code: 3"
    );
    assert_eq!(fake.removed.len(), 1);
    assert!(out.text.contains("output line\n"));
    assert_eq!(fake.runs.len(), 1);
    assert!(fake.commits.is_empty());
    assert!(fake.cache.is_empty());
}

#[test]
fn build_args_reach_run_and_the_cache_key() {
    let text = "ARG BASE=busybox\nFROM $BASE\nARG V=1\nRUN echo $V\n";
    let mut fake = Fake::new();
    let run = |fake: &mut Fake, args: &[(&str, &str)]| {
        let bo = BuildOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), Some(v.to_string())))
                .collect(),
            ..Default::default()
        };
        build(fake, text, bo, &ExecOptions::default())
    };
    let a = run(&mut fake, &[("http_proxy", "http://p")]);
    assert!(a.id.is_ok());
    let req = &fake.runs[0];
    assert!(req.config.env.contains(&"V=1".to_string()));
    assert!(req.config.env.contains(&"http_proxy=http://p".to_string()));
    // The recorded command has the declared args only.
    let commit = fake.commits.iter().find(|c| c.container.is_some()).unwrap();
    assert_eq!(commit.created_by, "|1 V=1 /bin/sh -c echo $V");
    // The committed config does not keep build args.
    assert!(!commit.config.env.iter().any(|e| e.starts_with("V=")));

    fake.reset_log();
    let b = run(&mut fake, &[("V", "2")]);
    assert!(b.id.is_ok());
    assert_eq!(fake.runs.len(), 1, "a new arg value misses the cache");
    fake.reset_log();
    let c = run(&mut fake, &[("V", "2"), ("unused", "x")]);
    assert!(fake.runs.is_empty(), "same value: cached");
    assert!(
        c.text
            .contains("[Warning] One or more build-args [unused] were not consumed\n")
    );
}

#[test]
fn labels_option_adds_a_step() {
    let mut fake = Fake::new();
    let eo = ExecOptions {
        labels: BTreeMap::from([("org.x".to_string(), "1".to_string())]),
        ..Default::default()
    };
    let out = build(&mut fake, "FROM busybox\n", BuildOptions::default(), &eo);
    let id = out.id.unwrap();
    assert!(out.text.contains("Step 2/2 : LABEL \"org.x\"='1'\n"));
    assert_eq!(fake.images[&id].config.labels["org.x"], "1");
}

#[test]
fn onbuild_triggers_run_in_the_child() {
    let mut fake = Fake::new();
    let parent = build(
        &mut fake,
        "FROM busybox\nONBUILD RUN echo trig\n",
        BuildOptions::default(),
        &ExecOptions::default(),
    )
    .id
    .unwrap();
    fake.images
        .insert("parent".into(), fake.images[&parent].clone());
    fake.reset_log();
    let out = build(
        &mut fake,
        "FROM parent\nCMD x\n",
        BuildOptions::default(),
        &ExecOptions::default(),
    );
    let id = out.id.unwrap();
    assert!(out.text.contains("# Executing 1 build trigger\n"));
    assert_eq!(fake.runs[0].cmd, vec!["/bin/sh", "-c", "echo trig"]);
    assert!(fake.images[&id].config.on_build.is_empty());
}

#[test]
fn entrypoint_resets_inherited_cmd_and_shell_applies() {
    let mut fake = Fake::new();
    let out = build(
        &mut fake,
        "FROM busybox\nSHELL [\"/bin/bash\", \"-xc\"]\nENTRYPOINT run it\n",
        BuildOptions::default(),
        &ExecOptions::default(),
    );
    let id = out.id.unwrap();
    let c = &fake.images[&id].config;
    assert_eq!(c.cmd, None);
    assert_eq!(
        c.entrypoint,
        Some(vec!["/bin/bash".into(), "-xc".into(), "run it".into()])
    );
}

#[test]
fn missing_base_image_fails() {
    let mut fake = Fake::new();
    let out = build(
        &mut fake,
        "FROM nope\n",
        BuildOptions::default(),
        &ExecOptions::default(),
    );
    assert_eq!(
        out.id.unwrap_err().to_string(),
        "pull access denied for nope"
    );
}

#[test]
fn ports() {
    assert_eq!(expand_port("80").unwrap(), vec!["80/tcp"]);
    assert_eq!(expand_port("53/UDP").unwrap(), vec!["53/udp"]);
    assert_eq!(
        expand_port("8000-8002/tcp").unwrap(),
        vec!["8000/tcp", "8001/tcp", "8002/tcp"]
    );
    assert_eq!(
        expand_port("80/xyz").unwrap_err().to_string(),
        "Invalid proto: xyz"
    );
    assert_eq!(
        expand_port("abc").unwrap_err().to_string(),
        "Invalid containerPort: abc"
    );
}

#[test]
fn destinations() {
    assert_eq!(normalize_dest("", "x"), "/x");
    assert_eq!(normalize_dest("/app", "."), "/app/");
    assert_eq!(normalize_dest("/app", "sub/"), "/app/sub/");
    assert_eq!(normalize_dest("/app", "/abs"), "/abs");
}

#[test]
fn config_matches_dockerd() {
    // The config dockerd 20.10's legacy builder produced for this Dockerfile with
    // `--build-arg G=over` (docker inspect), field by field.
    let text = r#"ARG V=1
ARG G=glob
FROM scratch
ARG V
ENV A 1 2
ENV C="x y" D=e\ f E='$A' F="$A" G=${NOPE:-dflt} H=${A:+alt}
ENV A=changed B=$A
LABEL "c d"=e v=$V g=$G
WORKDIR rel
WORKDIR sub/../x
EXPOSE 80 ${NOPE:-53/udp}
VOLUME /a $A
STOPSIGNAL SIGTERM
USER ${V}:${V}
"#;
    let mut fake = Fake::new();
    let bo = BuildOptions {
        build_args: BTreeMap::from([("G".to_string(), Some("over".to_string()))]),
        ..Default::default()
    };
    let out = build(&mut fake, text, bo, &ExecOptions::default());
    assert!(!out.text.contains("[Warning]"), "G is declared globally");
    let id = out.id.unwrap();
    let c = &fake.images[&id].config;
    assert_eq!(c.user, "1:1");
    assert_eq!(
        c.env,
        vec![
            format!("PATH={DEFAULT_PATH}"),
            "A=changed".into(),
            "C=x y".into(),
            "D=e f".into(),
            "E=$A".into(),
            "F=1 2".into(),
            "G=dflt".into(),
            "H=alt".into(),
            "B=1 2".into(),
        ]
    );
    assert_eq!(
        c.exposed_ports.keys().collect::<Vec<_>>(),
        vec!["53/udp", "80/tcp"]
    );
    assert_eq!(c.volumes.keys().collect::<Vec<_>>(), vec!["/a", "changed"]);
    assert_eq!(c.working_dir, "/rel/x");
    assert_eq!(
        c.labels,
        BTreeMap::from([
            ("c d".to_string(), "e".to_string()),
            ("g".to_string(), "dflt".to_string()),
            ("v".to_string(), "1".to_string()),
        ])
    );
    assert_eq!(c.stop_signal.as_deref(), Some("SIGTERM"));
}

#[test]
fn pull_and_platform_reach_the_backend() {
    let mut fake = Fake::new();
    let eo = ExecOptions {
        pull: true,
        ..Default::default()
    };
    let out = build(
        &mut fake,
        "FROM --platform=linux/amd64 busybox\n",
        BuildOptions::default(),
        &eo,
    );
    // A bare FROM builds the base image itself, as Docker does.
    assert_eq!(out.id.unwrap(), format!("sha256:{}", "b".repeat(64)));
    assert_eq!(fake.calls[0], "base busybox Some(\"linux/amd64\") true");
}
