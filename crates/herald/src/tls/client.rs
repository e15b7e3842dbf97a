//! The client side: our certificate to the server, and a check that the server is the
//! identity we meant to call.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::{ClientSessionMemoryCache, ResolvesClientCert, Resumption};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, SignatureScheme};

use crate::Identity;
use crate::tls::TlsError;
use crate::tls::material::{Material, TlsFiles};
use crate::tls::provider::{VERSIONS, provider};
use crate::tls::spiffe::TrustDomain;
use crate::tls::stats::HandshakeStats;
use crate::tls::verify::SpiffeServerVerifier;

/// Sessions remembered per server identity, for resumption on reconnect.
const SESSIONS_PER_SERVER: usize = 64;

/// A client's TLS: its certificate and CA, shared by every channel it opens.
#[derive(Clone)]
pub struct ClientTls {
    material: Arc<Material>,
    stats: Arc<HandshakeStats>,
    /// One configuration per server identity, shared by every channel to that service: rustls
    /// resumes a session only under the verifier that established it, and services sharing a
    /// host never mix their sessions up.
    configs: Arc<Mutex<HashMap<Identity, Arc<ClientConfig>>>>,
}

/// Presents the current certificate, whatever reloads happened since start.
#[derive(Debug)]
struct CurrentCert(Arc<Material>);

// === impl ClientTls ===

impl ClientTls {
    /// TLS from files, reloaded when they change. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// As [`ServerTls::from_files`](crate::tls::ServerTls::from_files).
    pub fn from_files(files: TlsFiles, trust_domain: TrustDomain) -> Result<ClientTls, TlsError> {
        Ok(Self::with_material(Material::watch(files, trust_domain)?))
    }

    /// TLS from PEM held in memory (never reloaded).
    ///
    /// # Errors
    /// As [`ServerTls::from_files`](crate::tls::ServerTls::from_files).
    pub fn from_pem(
        cert: &str,
        key: &str,
        ca: &str,
        trust_domain: TrustDomain,
    ) -> Result<ClientTls, TlsError> {
        Ok(Self::with_material(Material::from_pem(
            cert.as_bytes(),
            key.as_bytes(),
            ca.as_bytes(),
            trust_domain,
        )?))
    }

    fn with_material(material: Arc<Material>) -> ClientTls {
        ClientTls {
            material,
            stats: Arc::default(),
            configs: Arc::default(),
        }
    }

    /// This client's own identity, from its certificate.
    pub fn identity(&self) -> Identity {
        self.material.current().identity.clone()
    }

    /// Handshakes made by channels of this client.
    pub fn handshakes(&self) -> &Arc<HandshakeStats> {
        &self.stats
    }

    /// The rustls configuration that accepts only a server proving `expected`.
    pub(crate) fn config_for(&self, expected: Identity) -> Result<Arc<ClientConfig>, TlsError> {
        let mut configs = self
            .configs
            .lock()
            .map_err(|_| TlsError::new("TLS config lock poisoned"))?;
        if let Some(config) = configs.get(&expected) {
            return Ok(config.clone());
        }
        let verifier = SpiffeServerVerifier {
            material: self.material.clone(),
            expected: expected.clone(),
        };
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::new(e.to_string()))?
            .dangerous()
            // Not "dangerous": it replaces host-name checks with a stricter identity check.
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(CurrentCert(self.material.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
        config.resumption =
            Resumption::store(Arc::new(ClientSessionMemoryCache::new(SESSIONS_PER_SERVER)));
        let config = Arc::new(config);
        configs.insert(expected, config.clone());
        Ok(config)
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("material", &self.material)
            .finish_non_exhaustive()
    }
}

impl ResolvesClientCert for CurrentCert {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.current().certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
