//! Service identities from SPIFFE IDs in a certificate's URI SAN.
//!
//! `spiffe://<trust domain>/service/foo` is `foo`, `/user/boo` is `user.boo`, `/host/x` is
//! `host.x`. Anything else — no URI SAN, two of them, another trust domain, another path
//! shape — is no identity, and the peer is refused. Names use `[a-z0-9_-]` only: a dot would
//! let a service called `user.boo` pass for the user `boo`.

use std::fmt;

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Identity;

/// A SPIFFE trust domain, e.g. `herald.local`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustDomain(String);

/// Why a certificate carries no usable identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The bytes are not an X.509 certificate.
    #[error("not a parsable X.509 certificate")]
    Unparsable,
    /// No URI SAN at all.
    #[error("the certificate has no URI SAN (expected one spiffe:// ID)")]
    NoUri,
    /// More than one URI SAN: which one is the identity would be ambiguous.
    #[error("the certificate has {0} URI SANs (expected exactly one spiffe:// ID)")]
    ManyUris(usize),
    /// The URI is not a SPIFFE ID of the expected shape.
    #[error("{uri:?} is not spiffe://<trust domain>/<service|user|host>/<name>")]
    Malformed {
        /// The URI found.
        uri: String,
    },
    /// The SPIFFE ID belongs to another trust domain.
    #[error("{uri:?} is not in trust domain {expected:?}")]
    ForeignTrustDomain {
        /// The URI found.
        uri: String,
        /// The trust domain configured.
        expected: String,
    },
}

/// The trust domain was not a valid DNS-like name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid trust domain {0:?}: use lowercase letters, digits, dots and dashes")]
pub struct InvalidTrustDomain(String);

// === impl TrustDomain ===

impl TrustDomain {
    /// A trust domain.
    ///
    /// # Errors
    /// Empty, or not made of lowercase letters, digits, `.`, `-` and `_`.
    pub fn new(name: impl Into<String>) -> Result<TrustDomain, InvalidTrustDomain> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 255
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if ok {
            Ok(TrustDomain(name))
        } else {
            Err(InvalidTrustDomain(name))
        }
    }

    /// The domain's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SPIFFE ID of `identity` in this domain: `cache` → `spiffe://<td>/service/cache`,
    /// `user.boo` → `spiffe://<td>/user/boo`.
    pub fn spiffe_id(&self, identity: &str) -> String {
        match identity.split_once('.') {
            Some((kind @ ("user" | "host"), name)) => format!("spiffe://{}/{kind}/{name}", self.0),
            _ => format!("spiffe://{}/service/{identity}", self.0),
        }
    }

    /// The identity a SPIFFE ID names in this domain.
    ///
    /// # Errors
    /// Another trust domain, or a URI not of the accepted shape.
    pub fn identity_of(&self, uri: &str) -> Result<Identity, IdentityError> {
        let malformed = || IdentityError::Malformed {
            uri: uri.to_owned(),
        };
        let rest = uri.strip_prefix("spiffe://").ok_or_else(malformed)?;
        let (domain, path) = rest.split_once('/').ok_or_else(malformed)?;
        let (kind, name) = path.split_once('/').ok_or_else(malformed)?;
        if !valid_name(name) {
            return Err(malformed());
        }
        let identity = match kind {
            "service" => name.to_owned(),
            "user" | "host" => format!("{kind}.{name}"),
            _ => return Err(malformed()),
        };
        if domain != self.0 {
            return Err(IdentityError::ForeignTrustDomain {
                uri: uri.to_owned(),
                expected: self.0.clone(),
            });
        }
        Ok(Identity::new(identity))
    }

    /// The identity in a DER certificate: its one URI SAN, read as a SPIFFE ID.
    ///
    /// # Errors
    /// See [`IdentityError`].
    pub fn identity_in_cert(&self, der: &[u8]) -> Result<Identity, IdentityError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| IdentityError::Unparsable)?;
        let uris: Vec<&str> = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::URI(uri) => Some(*uri),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(_) => return Err(IdentityError::Unparsable),
        };
        match uris.as_slice() {
            [] => Err(IdentityError::NoUri),
            [uri] => self.identity_of(uri),
            many => Err(IdentityError::ManyUris(many.len())),
        }
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether `name` may be an identity's name: 1–128 of `[a-z0-9_-]`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td() -> TrustDomain {
        TrustDomain::new("herald.local").expect("valid")
    }

    #[test]
    fn maps_the_three_kinds() {
        assert_eq!(
            td().identity_of("spiffe://herald.local/service/foo")
                .map(|i| i.to_string()),
            Ok("foo".into())
        );
        assert_eq!(
            td().identity_of("spiffe://herald.local/user/boo")
                .map(|i| i.to_string()),
            Ok("user.boo".into())
        );
        assert_eq!(
            td().identity_of("spiffe://herald.local/host/x")
                .map(|i| i.to_string()),
            Ok("host.x".into())
        );
        for identity in ["foo", "user.boo", "host.x"] {
            let id = td().spiffe_id(identity);
            assert_eq!(
                td().identity_of(&id).map(|i| i.to_string()),
                Ok(identity.to_owned())
            );
        }
    }

    #[test]
    fn refuses_other_shapes_and_domains() {
        for bad in [
            "spiffe://herald.local/service/",
            "spiffe://herald.local/service",
            "spiffe://herald.local/team/foo",
            "spiffe://herald.local/service/foo/extra",
            "spiffe://herald.local/service/user.boo",
            "spiffe://herald.local/service/Foo",
            "https://herald.local/service/foo",
            "spiffe://herald.local",
            "",
        ] {
            assert!(
                matches!(td().identity_of(bad), Err(IdentityError::Malformed { .. })),
                "{bad:?} accepted"
            );
        }
        assert!(matches!(
            td().identity_of("spiffe://evil.example/service/foo"),
            Err(IdentityError::ForeignTrustDomain { .. })
        ));
    }

    #[test]
    fn trust_domains_are_checked() {
        assert!(TrustDomain::new("Herald.Local").is_err());
        assert!(TrustDomain::new("").is_err());
        assert!(TrustDomain::new("a/b").is_err());
    }
}
