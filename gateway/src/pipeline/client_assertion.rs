//! `private_key_jwt` (RFC 7523 §2.2, OpenID Connect Core §9): instead of a
//! shared secret, the client proves itself with a short-lived JWT signed by
//! its private key. The integration's key (RS256 or ES256, PEM) is stored
//! encrypted like every secret and never returned; a fresh assertion, with
//! a unique `jti`, is signed for every token request.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use std::time::Duration;

/// `client_assertion_type` of a JWT assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How long an assertion is valid: token endpoints refuse long ones.
const LIFETIME: Duration = Duration::from_secs(120);

/// A private key that signs client assertions.
pub struct ClientKey {
    algorithm: Algorithm,
    key: EncodingKey,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// A key that cannot sign.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    /// Neither an RSA key nor a P-256 key in PKCS#8, in PEM.
    #[error(
        "must be a PEM private key: RSA (\"RSA PRIVATE KEY\" or \"PRIVATE KEY\") for RS256, or P-256 in PKCS#8 (\"PRIVATE KEY\") for ES256"
    )]
    Unreadable,
    /// The key was read but could not sign.
    #[error("could not sign with the key: {0}")]
    Sign(String),
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: u64,
    exp: u64,
}

impl ClientKey {
    /// Reads a PEM private key: RSA for RS256, EC P-256 for ES256.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        [
            (Algorithm::RS256, EncodingKey::from_rsa_pem(pem.as_bytes())),
            (Algorithm::ES256, EncodingKey::from_ec_pem(pem.as_bytes())),
        ]
        .into_iter()
        .find_map(|(algorithm, key)| key.ok().map(|key| Self { algorithm, key }))
        .ok_or(KeyError::Unreadable)
    }

    /// Checks a key given to the API: it reads, and it signs, so a key that
    /// reads but cannot sign is refused there rather than at every token
    /// request.
    pub fn check(pem: &str) -> Result<(), KeyError> {
        Self::from_pem(pem)?.assertion("check", "https://check.invalid/token", None)?;
        Ok(())
    }

    /// A signed assertion for `client_id` at `token_endpoint`: `iss` and
    /// `sub` the client id, `aud` the endpoint, a unique `jti`, valid
    /// for two minutes; `kid` in the header when given.
    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        key_id: Option<&str>,
    ) -> Result<String, KeyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut header = Header::new(self.algorithm);
        header.kid = key_id.map(str::to_owned);
        let claims = Claims {
            iss: client_id,
            sub: client_id,
            aud: token_endpoint,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| KeyError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_key_is_refused() {
        for bad in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        ] {
            assert!(ClientKey::check(bad).is_err(), "{bad:?}");
        }
    }
}
