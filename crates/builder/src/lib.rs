//! berth's builder: the Dockerfile parser, variable substitution, the build planner (stages,
//! `--target`, build args), `.dockerignore` matching, cache keys, and the executor that drives a
//! [`BuildBackend`] through the legacy builder's steps and messages.
//!
//! Why not the `dockerfile-parser` crate: it parses only FROM/ARG/LABEL/RUN/ENTRYPOINT/CMD/
//! COPY/ENV (every other instruction is an untyped "misc" one), has no `# escape=` directive
//! (its pest grammar hard-codes `\`), no flag checks, no ENV/LABEL old-form rules and none of
//! moby's error texts; Docker compatibility needs all of those, so the parser is written here
//! after moby/buildkit's rules (no code copied).
//!
//! This crate is pure and platform-neutral: no HTTP, no Linux calls, no knowledge of the data
//! root. It sees the engine only through [`BuildBackend`], so all its tests run without root.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod backend;
pub mod cache;
mod error;
pub mod execute;
pub mod expand;
pub mod glob;
pub mod ignore;
pub mod parse;
pub mod plan;

pub use backend::{
    BuildBackend, CommitRequest, CopyFrom, CopyRequest, HealthConfig, ImageConfig, ImageState,
    RunEvent, RunOutcome, RunRequest,
};
pub use cache::{CacheKey, Entry, EntryKind, step_key, tree_hash};
pub use error::{BuildError, Result};
pub use execute::{Event, ExecOptions, execute, short_id};
pub use expand::{Lexer, Vars};
pub use glob::{glob_match, glob_valid, has_glob};
pub use ignore::Ignore;
pub use parse::{CommandLine, CopySpec, Dockerfile, Healthcheck, Instruction, Kind, parse};
pub use plan::{ArgScope, Base, BuildOptions, CopySource, Plan, Stage, plan};
