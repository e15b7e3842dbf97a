//! The server side: every client must present a certificate from our CA with one SPIFFE ID
//! of our trust domain; its identity is the caller's name for ACLs, limits and stats.

use std::fmt;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;

use crate::Identity;
use crate::tls::material::{Material, TlsFiles};
use crate::tls::provider::{VERSIONS, provider};
use crate::tls::spiffe::TrustDomain;
use crate::tls::verify::SpiffeClientVerifier;
use crate::tls::{Alpn, TlsError};

/// How many TLS 1.2 sessions the server remembers for resumption.
const SESSION_CACHE: usize = 4096;

/// A server's TLS: certificate, CA, trust domain, and the rustls configuration built on them.
#[derive(Clone)]
pub struct ServerTls {
    material: Arc<Material>,
    /// gRPC: ALPN h2.
    config: Arc<ServerConfig>,
    /// gRPC and gRPC-Web: h2 and http/1.1.
    web: Arc<ServerConfig>,
    /// The legacy bridge: http/1.1.
    http1: Arc<ServerConfig>,
}

/// Serves the current certificate, whatever reloads happened since start.
#[derive(Debug)]
struct CurrentCert(Arc<Material>);

// === impl ServerTls ===

impl ServerTls {
    /// TLS from files, reloaded when they change. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// A file is unreadable, does not parse, the key does not match the certificate, or
    /// the certificate carries no identity of `trust_domain`.
    pub fn from_files(files: TlsFiles, trust_domain: TrustDomain) -> Result<ServerTls, TlsError> {
        Self::with_material(Material::watch(files, trust_domain)?)
    }

    /// TLS from PEM held in memory (never reloaded).
    ///
    /// # Errors
    /// As [`ServerTls::from_files`].
    pub fn from_pem(
        cert: &str,
        key: &str,
        ca: &str,
        trust_domain: TrustDomain,
    ) -> Result<ServerTls, TlsError> {
        Self::with_material(Material::from_pem(
            cert.as_bytes(),
            key.as_bytes(),
            ca.as_bytes(),
            trust_domain,
        )?)
    }

    fn with_material(material: Arc<Material>) -> Result<ServerTls, TlsError> {
        let resumable = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, TlsError> {
            let mut config = config(&material, alpn)?;
            // Resumption: session ids (TLS 1.2) from a cache, stateless tickets (TLS 1.3).
            config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
            config.ticketer =
                rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::new(e.to_string()))?;
            Ok(Arc::new(config))
        };
        Ok(ServerTls {
            config: resumable(&[b"h2"])?,
            web: resumable(&[b"h2", b"http/1.1"])?,
            http1: resumable(&[b"http/1.1"])?,
            material,
        })
    }

    /// This server's own identity, from its certificate.
    pub fn identity(&self) -> Identity {
        self.material.current().identity.clone()
    }

    /// The trust domain callers must belong to.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.material.trust_domain
    }

    /// Certificate reloads that succeeded, and that were refused.
    pub fn reloads(&self) -> (u64, u64) {
        (self.material.reloads(), self.material.reload_failures())
    }

    /// Why the last refused reload was refused.
    pub fn last_reload_error(&self) -> Option<String> {
        self.material.last_error()
    }

    /// The certificates in use — this server's chain, then the CA bundle — as the admin
    /// endpoint shows them.
    pub fn describe_certificates(&self) -> Vec<serde_json::Value> {
        let current = self.material.current();
        let ours = current.certified.cert.iter().map(|c| ("served", c));
        let cas = current.ca.iter().map(|c| ("trusted CA", c));
        ours.chain(cas)
            .map(|(role, der)| describe(role, der))
            .collect()
    }

    /// An acceptor for HTTP/1.1 (the admin endpoint) with the same certificate and checks.
    pub(crate) fn http1_acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config(
            &self.material,
            &[b"http/1.1"],
        )?)))
    }

    pub(crate) fn acceptor(&self, alpn: Alpn) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(match alpn {
            Alpn::H2 => self.config.clone(),
            Alpn::H2AndHttp11 => self.web.clone(),
            Alpn::Http11 => self.http1.clone(),
        })
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("material", &self.material)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CurrentCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified.clone())
    }
}

/// herald's server configuration for `alpn`: mutual TLS with SPIFFE identities.
fn config(material: &Arc<Material>, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| TlsError::new(e.to_string()))?
        .with_client_cert_verifier(Arc::new(SpiffeClientVerifier {
            material: material.clone(),
        }))
        .with_cert_resolver(Arc::new(CurrentCert(material.clone())));
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn describe(role: &str, der: &[u8]) -> serde_json::Value {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return serde_json::json!({ "role": role, "error": "unparsable certificate" });
    };
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| n.to_string())
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "role": role,
        "subject": cert.subject().to_string(),
        "issuer": cert.issuer().to_string(),
        "sans": sans,
        "serial": cert.raw_serial_as_string(),
        "not_before": cert.validity().not_before.to_rfc2822().unwrap_or_default(),
        "not_after": cert.validity().not_after.to_rfc2822().unwrap_or_default(),
        "expires_in_seconds": cert.validity().time_to_expiration().map(|d| d.whole_seconds()),
    })
}
