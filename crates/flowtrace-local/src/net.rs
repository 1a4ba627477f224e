//! Loopback ports.

use std::net::{Ipv4Addr, TcpListener};

use crate::{Error, Result};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Only for ports that must be handed to a child process through an environment variable;
/// servers of our own bind port 0 directly, which has no race.
pub fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| Error::io("find a free port on 127.0.0.1", e))
}
