//! Building workspace binaries from inside a test.
//!
//! `CARGO_BIN_EXE_<name>` only exists for the binaries of the package under test. For the
//! others (the flowtrace extension, the examples) a test calls [`workspace_bin`], which runs
//! `cargo build -p PACKAGE --bin NAME` once per test process, in the same target directory and
//! profile as the running test, and returns the path cargo reports for the executable.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::util::workspace_root;
use crate::{Error, Result};

/// A first build of a binary and its dependencies on a 2-core machine can take minutes; a
/// no-op build takes well under a second.
const BUILD_TIMEOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Bin,
    Example,
}

type Built = Arc<OnceLock<Result<PathBuf, String>>>;
type Cache = Mutex<HashMap<(Kind, String, String), Built>>;

fn cache() -> &'static Cache {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    CACHE.get_or_init(Mutex::default)
}

/// Builds binary `bin` of workspace package `package` (once per test process) and returns
/// its path.
///
/// For binaries of `flowtrace-tests` itself prefer `env!("CARGO_BIN_EXE_<name>")`, which
/// cargo provides without a nested build.
pub fn workspace_bin(package: &str, bin: &str) -> Result<PathBuf> {
    built(Kind::Bin, package, bin)
}

/// Builds example `example` of workspace package `package` (once per test process) and
/// returns its path.
pub fn workspace_example(package: &str, example: &str) -> Result<PathBuf> {
    built(Kind::Example, package, example)
}

fn built(kind: Kind, package: &str, name: &str) -> Result<PathBuf> {
    let cell = {
        let mut map = cache().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(map.entry((kind, package.to_owned(), name.to_owned())).or_default())
    };
    cell.get_or_init(|| build(kind, package, name)).clone().map_err(Error::Build)
}

/// The profile directory the running test binary lives in (`target/debug` for
/// `target/debug/deps/harness-HASH`).
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") { deps.parent()? } else { deps };
    Some(dir.to_path_buf())
}

/// `--profile` for a profile directory name: `debug` is the `dev` profile.
fn profile_for(dir: &Path) -> String {
    match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    }
}

fn build(kind: Kind, package: &str, name: &str) -> Result<PathBuf, String> {
    let profile_dir = profile_dir();
    let profile = profile_dir.as_deref().map_or_else(|| "dev".to_owned(), profile_for);
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| profile_dir.as_deref().and_then(Path::parent).map(Path::to_path_buf));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--message-format=json-render-diagnostics", "-p", package])
        .arg(match kind {
            Kind::Bin => "--bin",
            Kind::Example => "--example",
        })
        .arg(name)
        .args(["--profile", &profile])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = &target_dir {
        command.arg("--target-dir").arg(dir);
    }
    // Cargo sets these for the running test. Left in place, build scripts that watch them
    // (ring's watches CARGO_MANIFEST_DIR) would see a change and rebuild, and the next
    // `cargo test` would rebuild again.
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_BIN_EXE_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            )
        {
            command.env_remove(key);
        }
    }
    let described = format!("{command:?}");

    let mut child = command.spawn().map_err(|e| format!("{described}: cannot start: {e}"))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || read_all(stdout));
    let err_reader = std::thread::spawn(move || read_all(stderr));

    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > BUILD_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{described}: still running after {BUILD_TIMEOUT:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("{described}: {e}")),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("{described}: {status}\n{stderr}"));
    }

    let wanted_kind = match kind {
        Kind::Bin => "bin",
        Kind::Example => "example",
    };
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == name)
        .filter(|msg| msg["target"]["kind"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == wanted_kind)))
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("{described}: cargo reported no executable for {name}\n{stderr}"))
}

fn read_all<R: Read>(pipe: Option<R>) -> String {
    let mut text = String::new();
    if let Some(mut pipe) = pipe {
        let _ = pipe.read_to_string(&mut text);
    }
    text
}
