//! Logging to stderr (which Lambda sends to CloudWatch), without a logging framework so the
//! binary stays small. Every line starts with `flowtrace-extension:` and its level.

use std::sync::atomic::{AtomicU8, Ordering};

/// How much to log, from `FLOWTRACE_LOG` (`error`, `warn`, `info`, `debug`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Only errors.
    Error = 0,
    /// Errors and warnings.
    Warn = 1,
    /// The default: lifecycle lines plus warnings and errors.
    Info = 2,
    /// Everything, including one line per request.
    Debug = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

impl Level {
    /// Parses a level name; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Self::Error),
            "warn" | "warning" => Some(Self::Warn),
            "info" => Some(Self::Info),
            "debug" | "trace" => Some(Self::Debug),
            _ => None,
        }
    }
}

/// Sets the process-wide level.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether lines of `level` are printed.
pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Prints one line if `level` is enabled.
pub fn write(level: Level, args: std::fmt::Arguments<'_>) {
    if enabled(level) {
        let tag = match level {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
        };
        eprintln!("flowtrace-extension: {tag} {args}");
    }
}

/// Logs at a level: `log!(Warn, "bad value {x}")`.
#[macro_export]
macro_rules! log {
    ($level:ident, $($arg:tt)*) => {
        $crate::log::write($crate::log::Level::$level, format_args!($($arg)*))
    };
}
