//! The HTTP clients deliveries and token fetches go through: one shared
//! client, and one per client certificate (mutual TLS), each trusting the
//! public roots plus the operator's `--tls-ca-file`. Clients keep their
//! connection pools, so they are built once per certificate and kept.

use super::deliver::{self, HttpSettings};
use crate::model::TlsIdentity;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;

/// Client certificates kept at once; past it the cache starts over (the
/// clients are rebuilt on demand).
const MAX_IDENTITIES: usize = 1024;

/// What is wrong with a client certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate is not one or more PEM certificates.
    #[error("must be one or more PEM certificates (\"CERTIFICATE\"), leaf first")]
    Certificate,
    /// The key is not a PEM private key.
    #[error("must be a PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    PrivateKey,
    /// The key is not the certificate's.
    #[error("is not the key of the certificate")]
    Mismatch,
    /// The HTTP client refused it.
    #[error("cannot be used: {0}")]
    Unusable(String),
}

impl IdentityError {
    /// The field at fault, under `tls_client_certificate`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::PrivateKey | Self::Mismatch | Self::Unusable(_) => "private_key",
        }
    }
}

/// The certificate chain in `pem`, leaf first; refused when empty.
pub fn check_certificate(pem: &str) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|_| IdentityError::Certificate)?;
    if chain.is_empty() {
        return Err(IdentityError::Certificate);
    }
    Ok(chain)
}

/// Checks that `identity` reads and that its key is its certificate's.
pub fn check_identity(identity: &TlsIdentity) -> Result<(), IdentityError> {
    let chain = check_certificate(&identity.certificate)?;
    let key = PrivateKeyDer::from_pem_slice(identity.private_key.expose().as_bytes())
        .map_err(|_| IdentityError::PrivateKey)?;
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => IdentityError::Mismatch,
        _ => IdentityError::PrivateKey,
    })?;
    Ok(())
}

/// The shared client and the per-certificate ones.
#[derive(Debug)]
pub struct HttpClients {
    settings: HttpSettings,
    shared: reqwest::Client,
    with_identity: Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

impl HttpClients {
    /// Clients with `settings`.
    pub fn new(settings: HttpSettings) -> Self {
        Self {
            shared: deliver::client(&settings, None).expect("the shared HTTP client builds"),
            settings,
            with_identity: Mutex::default(),
        }
    }

    /// The client to use with `identity` (the shared one without).
    pub fn client(&self, identity: Option<&TlsIdentity>) -> Result<reqwest::Client, IdentityError> {
        let Some(identity) = identity else {
            return Ok(self.shared.clone());
        };
        let mut hasher = Sha256::new();
        hasher.update(identity.certificate.as_bytes());
        hasher.update([0]);
        hasher.update(identity.private_key.expose().as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        let mut clients = self.with_identity.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = deliver::client(&self.settings, Some(identity))?;
        if clients.len() >= MAX_IDENTITIES {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}
