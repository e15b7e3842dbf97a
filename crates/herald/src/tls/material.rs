//! Certificate, key and CA bundle, loaded from files, checked, and reloaded when the files
//! change — without a restart: new handshakes use the new files, open connections keep
//! working, and a half-written or mismatched set is refused (logged, counted) with the old
//! one kept.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Identity;
use crate::tls::TlsError;
use crate::tls::provider::provider;
use crate::tls::spiffe::TrustDomain;

/// Where a service's certificate, key and CA bundle live.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// The certificate chain, leaf first (PEM).
    pub cert: PathBuf,
    /// The leaf's private key (PEM, PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The CA certificates that peers' certificates must chain to (PEM).
    pub ca: PathBuf,
}

/// One consistent set: a key that matches its certificate, and the CA roots.
pub(crate) struct Loaded {
    pub(crate) certified: Arc<CertifiedKey>,
    /// The CA certificates, as loaded (for `/certs`).
    pub(crate) ca: Vec<CertificateDer<'static>>,
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) client_verifier: Arc<dyn ClientCertVerifier>,
    pub(crate) identity: Identity,
}

/// The current set, swapped atomically on reload.
pub(crate) struct Material {
    pub(crate) trust_domain: TrustDomain,
    current: ArcSwap<Loaded>,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// How often the files are looked at: well under the second rotation is promised in.
const POLL: Duration = Duration::from_millis(200);

// === impl TlsFiles ===

impl TlsFiles {
    /// `{dir}/{name}.pem`, `{dir}/{name}.key` and `{dir}/ca.pem`: the layout
    /// `herald certs` writes.
    pub fn in_dir(dir: impl AsRef<Path>, name: &str) -> TlsFiles {
        let dir = dir.as_ref();
        TlsFiles {
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
            ca: dir.join("ca.pem"),
        }
    }

    fn read(&self) -> Result<[Vec<u8>; 3], TlsError> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| TlsError::new(format!("cannot read {}: {e}", p.display())))
        };
        Ok([read(&self.cert)?, read(&self.key)?, read(&self.ca)?])
    }
}

// === impl Material ===

impl Material {
    pub(crate) fn from_pem(
        cert: &[u8],
        key: &[u8],
        ca: &[u8],
        trust_domain: TrustDomain,
    ) -> Result<Arc<Material>, TlsError> {
        let loaded = load(cert, key, ca, &trust_domain)?;
        Ok(Arc::new(Material {
            trust_domain,
            current: ArcSwap::from_pointee(loaded),
            reloads: AtomicU64::new(0),
            reload_failures: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }))
    }

    /// Loads `files` now and re-reads them every 200 ms from a background task (which ends
    /// when the material is dropped). Must run inside a tokio runtime.
    pub(crate) fn watch(
        files: TlsFiles,
        trust_domain: TrustDomain,
    ) -> Result<Arc<Material>, TlsError> {
        let [cert, key, ca] = files.read()?;
        let material = Material::from_pem(&cert, &key, &ca, trust_domain)?;
        let weak = Arc::downgrade(&material);
        tokio::spawn(watch_files(files, weak, [cert, key, ca]));
        Ok(material)
    }

    pub(crate) fn current(&self) -> arc_swap::Guard<Arc<Loaded>> {
        self.current.load()
    }

    /// Successful reloads since start.
    pub(crate) fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Refused reloads since start.
    pub(crate) fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// Why the last refused reload was refused.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or(None)
    }
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("trust_domain", &self.trust_domain)
            .field("identity", &self.current().identity)
            .field("reloads", &self.reloads())
            .finish()
    }
}

async fn watch_files(files: TlsFiles, material: Weak<Material>, mut last: [Vec<u8>; 3]) {
    let mut ticker = tokio::time::interval(POLL);
    loop {
        ticker.tick().await;
        let Some(material) = material.upgrade() else {
            return;
        };
        // Unreadable for a moment (being replaced) is not a change.
        let Ok(now) = files.read() else { continue };
        if now == last {
            continue;
        }
        match load(&now[0], &now[1], &now[2], &material.trust_domain) {
            Ok(loaded) => {
                tracing::info!(cert = %files.cert.display(), identity = %loaded.identity, "TLS certificate reloaded");
                material.current.store(Arc::new(loaded));
                material.reloads.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = material.last_error.lock() {
                    *e = None;
                }
            }
            Err(error) => {
                // Logged once per content: a half-written file is seen again when complete.
                tracing::warn!(cert = %files.cert.display(), %error, "TLS files changed but were refused; keeping the previous ones");
                material.reload_failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut e) = material.last_error.lock() {
                    *e = Some(error.to_string());
                }
            }
        }
        last = now;
    }
}

/// Parses and checks one set.
fn load(
    cert: &[u8],
    key: &[u8],
    ca: &[u8],
    trust_domain: &TrustDomain,
) -> Result<Loaded, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::new(format!("certificate PEM: {e}")))?;
    let leaf = chain
        .first()
        .ok_or_else(|| TlsError::new("the certificate file holds no certificate"))?;
    let identity = trust_domain
        .identity_in_cert(leaf)
        .map_err(|e| TlsError::new(format!("our own certificate has no usable identity: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| TlsError::new(format!("private key PEM: {e}")))?;
    let certified = CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| TlsError::new(format!("the key does not go with the certificate: {e}")))?;

    let mut roots = RootCertStore::empty();
    let mut ca_certs = Vec::new();
    for ca_cert in CertificateDer::pem_slice_iter(ca) {
        let ca_cert = ca_cert.map_err(|e| TlsError::new(format!("CA bundle PEM: {e}")))?;
        roots
            .add(ca_cert.clone())
            .map_err(|e| TlsError::new(format!("CA bundle: {e}")))?;
        ca_certs.push(ca_cert);
    }
    if roots.is_empty() {
        return Err(TlsError::new("the CA bundle holds no certificate"));
    }
    let roots = Arc::new(roots);
    let client_verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider())
        .build()
        .map_err(|e| TlsError::new(format!("CA bundle: {e}")))?;
    Ok(Loaded {
        certified: Arc::new(certified),
        ca: ca_certs,
        roots,
        client_verifier,
        identity,
    })
}
