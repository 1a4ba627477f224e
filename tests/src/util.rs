//! Ports, fixtures and paths.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Only for ports the harness cannot bind itself (a port handed to a child process through
/// an environment variable). Servers of the harness bind port 0 directly, which has no race.
pub fn free_port() -> u16 {
    flowtrace_local::free_port().expect("no free TCP port on 127.0.0.1")
}

/// The workspace root (the directory of the root `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let tests_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    tests_dir.parent().unwrap_or(tests_dir).to_path_buf()
}

/// The path of `tests/fixtures/NAME`; `.json` is appended when `NAME` has no such file but
/// `NAME.json` exists.
pub fn fixture_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let exact = dir.join(name);
    if exact.is_file() {
        return exact;
    }
    let with_json = dir.join(format!("{name}.json"));
    if with_json.is_file() { with_json } else { exact }
}

/// Loads `tests/fixtures/NAME` as JSON.
pub fn try_fixture(name: &str) -> Result<serde_json::Value> {
    let path = fixture_path(name);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| Error::NotFound(format!("fixture {} is not JSON: {e}", path.display())))
}

/// Loads `tests/fixtures/NAME` as JSON, panicking with the path when it is missing or invalid.
pub fn fixture(name: &str) -> serde_json::Value {
    match try_fixture(name) {
        Ok(value) => value,
        Err(e) => panic!("fixture {name:?}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, TcpListener};

    use super::*;

    #[test]
    fn free_port_is_bindable() {
        let port = free_port();
        assert_ne!(port, 0);
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
    }

    #[test]
    fn fixtures_load_with_or_without_json_suffix() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let Some(name) = std::fs::read_dir(&dir).ok().and_then(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .find_map(|name| name.strip_suffix(".json").map(str::to_owned))
        }) else {
            return; // no fixtures yet
        };
        assert_eq!(fixture_path(&name), fixture_path(&format!("{name}.json")));
        assert_eq!(fixture(&name), fixture(&format!("{name}.json")));
        assert!(try_fixture("no-such-fixture").is_err());
    }
}
