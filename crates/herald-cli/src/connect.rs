//! How `herald call` and `herald bench` reach a server: its address, and mutual TLS (or,
//! said out loud, plaintext).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use herald::client::{Channel, Discovery};
use herald::tls::{ClientTls, TlsFiles, TrustDomain};

use crate::cli::ConnectArgs;

/// A server to call: where it is, and the identity it must prove.
#[derive(Debug)]
pub(crate) struct Server {
    /// `host:port`, as given or read from `demo.json`.
    pub(crate) address: String,
    /// `None` over plaintext.
    tls: Option<(ClientTls, String)>,
}

/// The part of `demo.json` these commands read (written by `herald demo --serve`).
#[derive(Debug, serde::Deserialize)]
struct DemoFile {
    trust_domain: String,
    services: std::collections::BTreeMap<String, DemoService>,
    client: DemoClient,
}

#[derive(Debug, serde::Deserialize)]
struct DemoService {
    address: String,
    identity: String,
}

#[derive(Debug, serde::Deserialize)]
struct DemoClient {
    cert: PathBuf,
    key: PathBuf,
    ca: PathBuf,
}

// === impl Server ===

impl Server {
    /// The server `target` names, with the TLS settings of `args`. Must run inside the
    /// runtime (certificate files are watched).
    ///
    /// # Errors
    /// Missing or contradictory flags, unreadable certificates, an unknown demo service.
    pub(crate) fn resolve(target: &str, args: &ConnectArgs) -> anyhow::Result<Server> {
        if let Some(dir) = &args.demo {
            return Self::from_demo(target, dir, args);
        }
        if args.plaintext {
            return Ok(Server {
                address: target.to_owned(),
                tls: None,
            });
        }
        let (Some(cert), Some(key), Some(ca)) = (&args.cert, &args.key, &args.ca) else {
            bail!(
                "mutual TLS needs --cert, --key and --ca (or --demo DIR for a running `herald demo \
                 --serve`); pass --plaintext for a server without TLS"
            );
        };
        let Some(identity) = &args.server_identity else {
            bail!("mutual TLS needs --server-identity NAME: the identity the server must prove");
        };
        let files = TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: ca.clone(),
        };
        Ok(Server {
            address: target.to_owned(),
            tls: Some((client_tls(files, &args.trust_domain)?, identity.clone())),
        })
    }

    fn from_demo(target: &str, dir: &Path, args: &ConnectArgs) -> anyhow::Result<Server> {
        let path = dir.join("demo.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is `herald demo --serve --state-dir {}` running?)",
                path.display(),
                dir.display()
            )
        })?;
        let demo: DemoFile = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a demo description", path.display()))?;
        // A service's name, or one of the demo's addresses.
        let service = demo
            .services
            .get(target)
            .or_else(|| demo.services.values().find(|s| s.address == target));
        let Some(service) = service else {
            let names: Vec<&str> = demo.services.keys().map(String::as_str).collect();
            bail!(
                "the demo has no service {target:?}; name one of: {}",
                names.join(", ")
            );
        };
        let files = TlsFiles {
            cert: args.cert.clone().unwrap_or(demo.client.cert),
            key: args.key.clone().unwrap_or(demo.client.key),
            ca: args.ca.clone().unwrap_or(demo.client.ca),
        };
        let identity = args
            .server_identity
            .clone()
            .unwrap_or_else(|| service.identity.clone());
        Ok(Server {
            address: service.address.clone(),
            tls: Some((client_tls(files, &demo.trust_domain)?, identity)),
        })
    }

    /// A channel to the server, with `connections` HTTP/2 connections.
    ///
    /// # Errors
    /// The address is not a `host:port`.
    pub(crate) fn channel(&self, connections: usize) -> anyhow::Result<Channel> {
        let discovery = match self.address.parse::<SocketAddr>() {
            Ok(addr) => Discovery::fixed([addr])?,
            Err(_) => Discovery::dns(&self.address)
                .map(Discovery::from)
                .with_context(|| format!("{:?} is not a host:port address", self.address))?,
        };
        let builder = Channel::builder(discovery).connections_per_endpoint(connections.max(1));
        let builder = match &self.tls {
            Some((tls, identity)) => builder.tls(tls, identity.as_str()),
            None => builder.insecure_plaintext(),
        };
        Ok(builder.build()?)
    }

    /// How the connection is secured, for reports.
    pub(crate) fn security(&self) -> String {
        match &self.tls {
            Some((tls, server)) => format!("mutual TLS as {} to {server}", tls.identity()),
            None => "plaintext".to_owned(),
        }
    }
}

fn client_tls(files: TlsFiles, trust_domain: &str) -> anyhow::Result<ClientTls> {
    let trust_domain = TrustDomain::new(trust_domain)?;
    Ok(ClientTls::from_files(files, trust_domain)?)
}
