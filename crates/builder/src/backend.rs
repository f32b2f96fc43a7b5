//! What the executor needs from the engine, as a trait: resolve a base image, run a command in a
//! container from an image, copy files into a new layer, commit, keep cache entries, remove
//! intermediate containers, tag. The engine implements it (containers through the same runtime
//! as `run`, layers through storage); the tests implement it with a fake that records calls.
//!
//! The trait is synchronous so this crate needs no async runtime: the engine runs the executor
//! on a blocking thread and bridges to its async code there.
//!
//! Owns: the request/response types and the image config the builder edits (Docker's JSON
//! field names, so the engine can convert with serde). Must not know: how any of it is done.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cache::CacheKey;
use crate::error::Result;

/// Docker's HEALTHCHECK config (durations in nanoseconds, as the API has them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", ...]` or `["CMD-SHELL", "..."]`.
    pub test: Vec<String>,
    /// Interval (ns; 0 = inherit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: i64,
    /// Timeout (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: i64,
    /// Start period (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: i64,
    /// Start interval (ns).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_interval: i64,
    /// Retries (0 = inherit).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The part of an image's config a Dockerfile changes (Docker's `Config` field names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `USER`.
    #[serde(default)]
    pub user: String,
    /// `ENV`, `KEY=value`.
    #[serde(default)]
    pub env: Vec<String>,
    /// `CMD`.
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `WORKDIR`.
    #[serde(default)]
    pub working_dir: String,
    /// `LABEL`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `EXPOSE`: `"80/tcp": {}`.
    #[serde(default)]
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    /// `VOLUME`: `"/data": {}`.
    #[serde(default)]
    pub volumes: BTreeMap<String, serde_json::Value>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    /// `SHELL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
    /// `ONBUILD` triggers.
    #[serde(default)]
    pub on_build: Vec<String>,
}

/// An image the build stands on: its ID (`None` for `scratch`) and config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageState {
    /// `sha256:...`, or `None` for scratch.
    pub id: Option<String>,
    /// Its config.
    pub config: ImageConfig,
    /// Its author (MAINTAINER).
    pub author: Option<String>,
}

/// A RUN to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRequest {
    /// The image to create the container from (`None`: scratch).
    pub image: Option<String>,
    /// The config the container runs with (Env already includes the build args).
    pub config: ImageConfig,
    /// argv (the shell prepended for the shell form).
    pub cmd: Vec<String>,
    /// `networkmode` of the build (`None`: default bridge).
    pub network: Option<String>,
}

/// What happens during a RUN, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// The container was created (its full ID).
    Created(String),
    /// Output (stdout and stderr, interleaved as produced).
    Output(Vec<u8>),
}

/// How a RUN ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The container (to commit or remove).
    pub container: String,
    /// Exit code.
    pub exit_code: i64,
}

/// Where COPY/ADD read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    /// The build context.
    Context,
    /// An image's (or a built stage's) filesystem, by image ID.
    Image(String),
}

/// A COPY/ADD into a new layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    /// The image to add a layer to (`None`: scratch).
    pub parent: Option<String>,
    /// The config of the result (unchanged by the copy).
    pub config: ImageConfig,
    /// The author to keep.
    pub author: Option<String>,
    /// Source.
    pub from: CopyFrom,
    /// Source paths (expanded; relative to the source root; globs as `filepath.Match`).
    pub sources: Vec<String>,
    /// Absolute destination (a trailing `/` means "into this directory").
    pub dest: String,
    /// `--chown` (expanded).
    pub chown: Option<String>,
    /// `--chmod` (expanded).
    pub chmod: Option<String>,
    /// ADD: unpack local tar archives, fetch URLs.
    pub add: bool,
    /// The history line (`COPY file:<hash> in /dst`).
    pub created_by: String,
}

/// A commit of a container or of a config change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// The parent image (`None`: scratch).
    pub parent: Option<String>,
    /// The container to commit (a RUN's), or `None` for a config-only step.
    pub container: Option<String>,
    /// The new config.
    pub config: ImageConfig,
    /// The author.
    pub author: Option<String>,
    /// The history line (`/bin/sh -c #(nop)  ENV A=1`).
    pub created_by: String,
    /// A directory to create in a new layer first (WORKDIR creates its directory).
    pub mkdir: Option<String>,
}

/// The engine's side of a build.
pub trait BuildBackend {
    /// Resolves a base image (pulling it when missing or when `pull`), for `FROM` and
    /// `COPY --from=<image>`. Pull progress is the backend's to write to the build's stream
    /// (the executor is synchronous, so lines written during this call land after the
    /// `Step N/M : FROM …` line and before ` ---> <id>`).
    fn base_image(
        &mut self,
        reference: &str,
        platform: Option<&str>,
        pull: bool,
    ) -> Result<ImageState>;

    /// The state (ID, config, author) of an image by ID or reference. The executor does not
    /// need it (it carries each stage's config itself); backends may offer it to callers.
    fn image_state(&mut self, id: &str) -> Result<ImageState> {
        Err(crate::error::BuildError::Backend(format!(
            "image state of {id} is not available"
        )))
    }

    /// An identifier of what a COPY/ADD would copy, as moby's history shows it
    /// (`file:<hex>`, `dir:<hex>`, `multi:<hex>`; the hex from [`crate::cache::tree_hash`]);
    /// it goes into the step's cache key. Errors for missing sources (moby: `COPY failed:
    /// file not found in build context or excluded by .dockerignore: stat x: file does not
    /// exist`) and for sources reaching outside the context (`../`, symlinks out; moby:
    /// `COPY failed: forbidden path outside the build context: ../x ()`).
    fn source_hash(&mut self, from: &CopyFrom, sources: &[String], add: bool) -> Result<String>;

    /// Runs a command in a new container, reporting creation and output; the container stays
    /// until committed or removed.
    fn run(&mut self, req: &RunRequest, events: &mut dyn FnMut(RunEvent)) -> Result<RunOutcome>;

    /// Copies files into a new layer on `parent`: the new image's ID.
    fn copy(&mut self, req: &CopyRequest) -> Result<String>;

    /// Commits a container or a config change: the new image's ID.
    fn commit(&mut self, req: &CommitRequest) -> Result<String>;

    /// Removes an intermediate container.
    fn remove_container(&mut self, id: &str) -> Result<()>;

    /// The image recorded for a cache key, if it still exists.
    fn cache_lookup(&mut self, key: &CacheKey) -> Result<Option<String>>;

    /// Records a step's result.
    fn cache_record(&mut self, key: &CacheKey, image: &str) -> Result<()>;

    /// Tags the result.
    fn tag(&mut self, image: &str, reference: &str) -> Result<()>;
}
