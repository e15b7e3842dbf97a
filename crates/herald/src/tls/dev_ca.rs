//! A development certificate authority: what `herald certs init` / `issue` and the demo use.
//!
//! Leaves carry exactly one SPIFFE URI SAN and both the server and client auth EKUs: a
//! service is both. ECDSA P-256 by default (cheap handshakes); RSA-2048 for comparison.

use std::fmt;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::tls::spiffe::{TrustDomain, valid_name};

/// The key type of a generated certificate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256: small and fast to sign.
    #[default]
    EcdsaP256,
    /// RSA-2048 with SHA-256, for comparison.
    Rsa2048,
}

/// A CA that issues SPIFFE leaf certificates.
pub struct DevCa {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
    trust_domain: TrustDomain,
}

/// A certificate and its private key, PEM-encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// The leaf certificate.
    pub cert_pem: String,
    /// Its PKCS#8 private key.
    pub key_pem: String,
}

/// Everything about a leaf, for certificates out of the ordinary (tests of refusals).
#[derive(Clone, Debug)]
pub struct LeafOptions {
    /// URI SANs, usually one SPIFFE ID.
    pub uris: Vec<String>,
    /// DNS SANs.
    pub dns_names: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Key type.
    pub algorithm: KeyAlgorithm,
}

/// A certificate could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DevCaError(String);

// === impl DevCa ===

impl DevCa {
    /// A new CA for `trust_domain`, valid for ten years.
    ///
    /// # Errors
    /// Key generation or signing failed.
    pub fn generate(
        trust_domain: TrustDomain,
        algorithm: KeyAlgorithm,
    ) -> Result<DevCa, DevCaError> {
        let key = generate_key(algorithm)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        let mut name = DistinguishedName::new();
        // A distinct name per CA: verifiers pick candidate issuers by name.
        let tag: u32 = rand::random();
        name.push(
            DnType::CommonName,
            format!("herald development CA {tag:08x} ({trust_domain})"),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = OffsetDateTime::now_utc() - Duration::hours(1);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(3650);
        let cert = params.self_signed(&key).map_err(err)?;
        let key_pem = key.serialize_pem();
        Ok(DevCa {
            cert_pem: cert.pem(),
            key_pem,
            issuer: Issuer::new(params, key),
            trust_domain,
        })
    }

    /// A CA from its certificate and key, as written by [`DevCa::generate`].
    ///
    /// # Errors
    /// The PEM does not parse, or the key is not one rcgen can sign with.
    pub fn load(
        cert_pem: &str,
        key_pem: &str,
        trust_domain: TrustDomain,
    ) -> Result<DevCa, DevCaError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| DevCaError(format!("CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| DevCaError(format!("CA certificate: {e}")))?;
        Ok(DevCa {
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
            trust_domain,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The trust domain of the identities this CA issues.
    pub fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// A leaf for `identity` (`cache`, `user.boo`, `host.web-1`), valid for 90 days, with
    /// `localhost` and `127.0.0.1` as DNS/IP names too.
    ///
    /// # Errors
    /// An invalid identity name, or signing failed.
    pub fn issue(&self, identity: &str, algorithm: KeyAlgorithm) -> Result<IssuedCert, DevCaError> {
        let name = identity
            .strip_prefix("user.")
            .or_else(|| identity.strip_prefix("host."))
            .unwrap_or(identity);
        if !valid_name(name) {
            return Err(DevCaError(format!(
                "invalid identity {identity:?}: use a name of lowercase letters, digits, '-' and '_' \
                 (optionally prefixed user. or host.)"
            )));
        }
        let now = OffsetDateTime::now_utc();
        self.issue_with(LeafOptions {
            uris: vec![self.trust_domain.spiffe_id(identity)],
            dns_names: vec!["localhost".into()],
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(90),
            algorithm,
        })
    }

    /// A leaf exactly as `options` say.
    ///
    /// # Errors
    /// A SAN is not valid, or signing failed.
    pub fn issue_with(&self, options: LeafOptions) -> Result<IssuedCert, DevCaError> {
        let key = generate_key(options.algorithm)?;
        let mut params = CertificateParams::new(options.dns_names).map_err(err)?;
        for uri in options.uris {
            let uri = uri.try_into().map_err(err)?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "herald service");
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.not_before = options.not_before;
        params.not_after = options.not_after;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a private key.
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .finish_non_exhaustive()
    }
}

fn generate_key(algorithm: KeyAlgorithm) -> Result<KeyPair, DevCaError> {
    match algorithm {
        KeyAlgorithm::EcdsaP256 => {
            KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)
        }
        KeyAlgorithm::Rsa2048 => {
            use rsa::pkcs8::EncodePrivateKey;
            // ring signs with RSA keys but cannot make them.
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(err)?;
            let der = key.to_pkcs8_der().map_err(err)?;
            let der = rustls_pki_types::PrivatePkcs8KeyDer::from(der.as_bytes().to_vec());
            KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_RSA_SHA256).map_err(err)
        }
    }
}

fn err(e: impl fmt::Display) -> DevCaError {
    DevCaError(e.to_string())
}
