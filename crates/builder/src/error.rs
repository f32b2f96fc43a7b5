//! The crate's one error enum. Texts are the legacy builder's (moby `builder/dockerfile` and the
//! buildkit `instructions` package it vendors) where the docker CLI shows them; the daemon maps
//! the kinds to statuses. This module knows nothing of HTTP.

/// Everything the builder can fail with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BuildError {
    /// The Dockerfile had no bytes at all (checked before parsing, as moby does).
    #[error("the Dockerfile ({0}) cannot be empty")]
    EmptyDockerfile(String),
    /// The Dockerfile has only comments, blank lines or directives.
    #[error("failed to parse Dockerfile: file with no instructions")]
    NoInstructions,
    /// A parser directive is malformed or repeated.
    #[error("failed to parse Dockerfile: {0}")]
    Directive(String),
    /// A syntax error on a given (1-based, first line of the instruction) line.
    #[error("dockerfile parse error on line {line}: {message}")]
    Syntax {
        /// The instruction's first line.
        line: usize,
        /// What is wrong, in moby's words.
        message: String,
    },
    /// An instruction before the first FROM that is not ARG.
    #[error("no build stage in current context")]
    NoBuildStage,
    /// `--target` names no stage.
    #[error("failed to reach build target {0} in Dockerfile")]
    UnknownTarget(String),
    /// Variable substitution failed (`${X:?msg}`, a bad modifier, an unclosed quote).
    #[error("{0}")]
    Expand(String),
    /// An argument is invalid at dispatch time (a bad port, a bad stage reference).
    #[error("{0}")]
    Invalid(String),
    /// The backend failed (the engine's error, as text).
    #[error("{0}")]
    Backend(String),
    /// A RUN step exited non-zero; moby's text.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    RunFailed {
        /// The command as moby prints it (`/bin/sh -c make`).
        command: String,
        /// Its exit code.
        code: i64,
    },
}

impl BuildError {
    /// The line an error points at, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Syntax { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// True for errors in what the client sent (the Dockerfile, its arguments, the target).
    /// Those that `parse`/`plan` return come before any step: Docker answers them with 400.
    /// Everything from `execute` (a failing RUN, the backend, a bad substitution at a step)
    /// belongs in the build stream.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::EmptyDockerfile(_)
                | Self::NoInstructions
                | Self::Directive(_)
                | Self::Syntax { .. }
                | Self::NoBuildStage
                | Self::UnknownTarget(_)
        )
    }

    pub(crate) fn syntax(line: usize, message: impl Into<String>) -> Self {
        Self::Syntax {
            line,
            message: message.into(),
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, BuildError>;
