//! Where the admin endpoint may listen.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use tokio::net::TcpListener;

/// Where to put the admin endpoint.
#[derive(Clone, Debug)]
pub struct AdminConfig {
    bind: Bind,
    pub(crate) tls: Option<crate::tls::ServerTls>,
}

#[derive(Clone, Debug)]
enum Bind {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// The admin endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("admin endpoint: {0}")]
pub struct AdminError(String);

pub(crate) enum Bound {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener, PathBuf),
}

// === impl AdminConfig ===

impl AdminConfig {
    /// `127.0.0.1:port` (0: any free port).
    pub fn loopback(port: u16) -> AdminConfig {
        AdminConfig {
            bind: Bind::Tcp(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)),
            tls: None,
        }
    }

    /// A TCP address, which must be a loopback one.
    ///
    /// # Errors
    /// `addr` is not loopback: use [`AdminConfig::public_tcp`] if you truly mean it.
    pub fn tcp(addr: SocketAddr) -> Result<AdminConfig, AdminError> {
        if !addr.ip().is_loopback() {
            return Err(AdminError(format!(
                "{addr} is not a loopback address; the admin endpoint exposes profiles, logs and certificates \
                 (use AdminConfig::public_tcp to expose it anyway)"
            )));
        }
        Ok(AdminConfig {
            bind: Bind::Tcp(addr),
            tls: None,
        })
    }

    /// Any TCP address, public ones included. Anyone who reaches it reads your metrics,
    /// profiles and configuration, and changes your log level.
    pub fn public_tcp(addr: SocketAddr) -> AdminConfig {
        AdminConfig {
            bind: Bind::Tcp(addr),
            tls: None,
        }
    }

    /// A Unix socket at `path`, readable and writable by this user only (mode 0600).
    pub fn unix(path: impl Into<PathBuf>) -> AdminConfig {
        AdminConfig {
            bind: Bind::Unix(path.into()),
            tls: None,
        }
    }

    /// Puts the endpoint behind mutual TLS: only callers with a certificate of `tls`'s CA and
    /// trust domain get in (use a separate identity, e.g. an operator's `user.` one, in the
    /// limits you reason about).
    #[must_use]
    pub fn with_tls(mut self, tls: crate::tls::ServerTls) -> AdminConfig {
        self.tls = Some(tls);
        self
    }

    /// Binds now (inside a tokio runtime).
    pub(crate) fn bind(&self) -> Result<Bound, AdminError> {
        match &self.bind {
            Bind::Tcp(addr) => {
                let listener = std::net::TcpListener::bind(addr).map_err(AdminError::io)?;
                listener.set_nonblocking(true).map_err(AdminError::io)?;
                TcpListener::from_std(listener)
                    .map(Bound::Tcp)
                    .map_err(AdminError::io)
            }
            #[cfg(unix)]
            Bind::Unix(path) => {
                use std::os::unix::fs::PermissionsExt;
                // A stale socket from a previous run would make bind fail.
                if path.exists() {
                    std::fs::remove_file(path).map_err(AdminError::io)?;
                }
                let listener =
                    std::os::unix::net::UnixListener::bind(path).map_err(AdminError::io)?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
                    .map_err(AdminError::io)?;
                listener.set_nonblocking(true).map_err(AdminError::io)?;
                let listener =
                    tokio::net::UnixListener::from_std(listener).map_err(AdminError::io)?;
                Ok(Bound::Unix(listener, path.clone()))
            }
            #[cfg(not(unix))]
            Bind::Unix(_) => Err(AdminError("Unix sockets need a Unix system".into())),
        }
    }
}

// === impl AdminError ===

impl AdminError {
    pub(crate) fn io(error: std::io::Error) -> Self {
        AdminError(error.to_string())
    }
}
