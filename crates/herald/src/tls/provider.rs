//! The crypto herald uses, chosen explicitly: rustls with the *ring* provider.
//!
//! TLS 1.3 and 1.2 only; ECDHE key exchange only (X25519, P-256, P-384: forward secrecy);
//! AEAD suites only (AES-GCM, ChaCha20-Poly1305). *ring* rather than aws-lc-rs: it builds
//! with a plain C compiler, no cmake or NASM.

use std::sync::{Arc, OnceLock};

use rustls::SupportedProtocolVersion;
use rustls::crypto::CryptoProvider;
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::version::{TLS12, TLS13};

/// The protocol versions herald speaks.
pub(crate) static VERSIONS: &[&SupportedProtocolVersion] = &[&TLS13, &TLS12];

/// The provider: *ring*, restricted to the suites and groups above.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            Arc::new(CryptoProvider {
                cipher_suites: vec![
                    cipher_suite::TLS13_AES_128_GCM_SHA256,
                    cipher_suite::TLS13_AES_256_GCM_SHA384,
                    cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
                    cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                    cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
                    cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
                    cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                ],
                kx_groups: vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1],
                ..rustls::crypto::ring::default_provider()
            })
        })
        .clone()
}
