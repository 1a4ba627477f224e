//! The harness error type.

use std::time::Duration;

/// What can go wrong in the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bounded wait ran out. `seen` says what had happened by then.
    #[error("timed out after {after:?} waiting for {what}; seen so far: {seen}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        after: Duration,
        /// What had happened by then (process output, spans seen).
        seen: String,
    },
    /// Starting, signalling or reading a process failed.
    #[error("process {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A process ended when it should not have.
    #[error("{0}")]
    Process(String),
    /// The Lambda emulator refused or failed something.
    #[error("lambda emulator: {0}")]
    Emulator(String),
    /// A query found no match, or more than one where one was expected.
    #[error("{0}")]
    NotFound(String),
    /// `cargo build` of a workspace binary failed.
    #[error("cargo build failed: {0}")]
    Build(String),
}

/// `Result` with the harness [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { what: what.into(), source }
    }

    /// An [`Error::Timeout`] waiting for `what`.
    pub fn timeout(what: impl Into<String>, after: Duration, seen: impl Into<String>) -> Self {
        Self::Timeout { what: what.into(), after, seen: seen.into() }
    }
}
