//! Secrets: encryption at rest (AES-256-GCM), API keys (shown once, stored
//! as sha256, compared in constant time), and Standard Webhooks signing
//! secrets.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use std::path::Path;
use subtle::ConstantTimeEq;

const NONCE_LEN: usize = 12;
/// First byte of a ciphertext bound to its place ([`SecretSlot`]).
const BOUND: u8 = 0xB1;

/// Where a secret is stored: its ciphertext is bound to it (AES-GCM
/// associated data), so a ciphertext copied into another row, column or
/// organization does not decrypt there.
#[derive(Debug, Clone, Copy)]
pub struct SecretSlot<'a> {
    /// The owning organization.
    pub organization: &'a str,
    /// The row's id.
    pub row: &'a str,
    /// The column.
    pub column: &'static str,
}

impl SecretSlot<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.organization.len() + self.row.len() + 24);
        for part in [self.organization, self.row, self.column] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Encrypts and decrypts secret columns.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([key redacted])")
    }
}

/// A secret column could not be decrypted: the key is wrong or the data
/// was changed.
#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted (wrong HOOKGATE_SECRET_KEY?)")]
pub struct DecryptError;

impl Cipher {
    /// A cipher from 32 key bytes.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            aead: Aes256Gcm::new(key.into()),
        }
    }

    /// Parses a base64 key of 32 bytes (as in `HOOKGATE_SECRET_KEY`).
    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| anyhow::anyhow!("the secret key is not base64"))?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| {
            anyhow::anyhow!("the secret key must be 32 bytes (base64 of 32 random bytes)")
        })?;
        Ok(Self::new(&key))
    }

    /// Loads the key file at `path`, creating it (mode 0600) with a new
    /// random key when it does not exist. Returns the cipher and whether the
    /// file was created.
    pub fn from_key_file(path: &Path) -> anyhow::Result<(Self, bool)> {
        if path.exists() {
            let text = std::fs::read_to_string(path)?;
            return Ok((Self::from_base64(&text)?, false));
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        use std::io::Write as _;
        options.open(path)?.write_all(B64.encode(key).as_bytes())?;
        Ok((Self::new(&key), true))
    }

    /// `0xB1 || nonce || ciphertext` of `plaintext`, bound to `slot`.
    pub fn encrypt(&self, plaintext: &str, slot: SecretSlot<'_>) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        // getrandom only fails when the OS has no randomness at all.
        getrandom::fill(&mut nonce).expect("the OS random source failed");
        let aad = slot.associated_data();
        let payload = Payload {
            msg: plaintext.as_bytes(),
            aad: &aad,
        };
        let ciphertext = self
            .aead
            .encrypt(Nonce::from_slice(&nonce), payload)
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        out.push(BOUND);
        out.extend_from_slice(&nonce);
        out.extend(ciphertext);
        out
    }

    /// The plaintext of what [`Cipher::encrypt`] produced for `slot`.
    /// Ciphertexts written before secrets were bound (`nonce ||
    /// ciphertext`, no associated data) still decrypt; they are bound the
    /// next time their row is written.
    pub fn decrypt(&self, data: &[u8], slot: SecretSlot<'_>) -> Result<String, DecryptError> {
        if let Some((&BOUND, rest)) = data.split_first()
            && rest.len() > NONCE_LEN
        {
            let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
            let aad = slot.associated_data();
            let payload = Payload {
                msg: ciphertext,
                aad: &aad,
            };
            if let Ok(plain) = self.aead.decrypt(Nonce::from_slice(nonce), payload) {
                return String::from_utf8(plain).map_err(|_| DecryptError);
            }
        }
        self.decrypt_unbound(data)
    }

    fn decrypt_unbound(&self, data: &[u8]) -> Result<String, DecryptError> {
        if data.len() < NONCE_LEN {
            return Err(DecryptError);
        }
        let (nonce, ciphertext) = data.split_at(NONCE_LEN);
        let plain = self
            .aead
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| DecryptError)?;
        String::from_utf8(plain).map_err(|_| DecryptError)
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    bytes
}

/// A new Standard Webhooks signing secret: `whsec_` + base64 of 32 bytes.
pub fn new_signing_secret() -> String {
    format!("whsec_{}", B64.encode(random_bytes::<32>()))
}

/// A freshly made API key: the full key (shown once) and what is stored.
#[derive(Debug)]
pub struct NewApiKey {
    /// `key_…`, the public id.
    pub id: String,
    /// The whole key, `hgk_<id>_<secret>`: shown to the caller once.
    pub key: String,
    /// sha256 of the secret part, hex: what the database keeps.
    pub secret_hash: String,
}

/// Makes a new API key.
pub fn new_api_key() -> NewApiKey {
    let id = format!("key_{}", hex::encode(random_bytes::<8>()));
    let secret = hex::encode(random_bytes::<32>());
    NewApiKey {
        key: format!("hgk_{id}_{secret}"),
        secret_hash: hash_secret(&secret),
        id,
    }
}

/// Splits a presented key into its id and secret part.
pub fn parse_api_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("hgk_")?;
    let (id, secret) = rest.rsplit_once('_')?;
    (id.starts_with("key_") && secret.len() == 64).then_some((id, secret))
}

/// sha256 of `secret`, hex.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` hashes to `stored_hash`, in constant time.
pub fn verify_secret(secret: &str, stored_hash: &str) -> bool {
    hash_secret(secret)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

/// Whether `presented` equals `expected`, in constant time (both are hashed
/// first, so their lengths leak nothing).
pub fn constant_time_eq(presented: &str, expected: &str) -> bool {
    Sha256::digest(presented.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: SecretSlot<'static> = SecretSlot {
        organization: "org_a",
        row: "wh_1",
        column: "secret",
    };

    #[test]
    fn encrypts_and_refuses_tampering() {
        let cipher = Cipher::new(&[7u8; 32]);
        let mut sealed = cipher.encrypt("super-strong-pawwsord", HERE);
        assert!(!String::from_utf8_lossy(&sealed).contains("pawwsord"));
        assert_eq!(
            cipher.decrypt(&sealed, HERE).expect("decrypt"),
            "super-strong-pawwsord"
        );
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(cipher.decrypt(&sealed, HERE).is_err());
        assert!(
            Cipher::new(&[8u8; 32])
                .decrypt(&cipher.encrypt("x", HERE), HERE)
                .is_err()
        );
    }

    #[test]
    fn a_ciphertext_decrypts_only_where_it_was_written() {
        let cipher = Cipher::new(&[7u8; 32]);
        let sealed = cipher.encrypt("s3cret", HERE);
        for elsewhere in [
            SecretSlot {
                organization: "org_b",
                ..HERE
            },
            SecretSlot {
                row: "wh_2",
                ..HERE
            },
            SecretSlot {
                column: "previous_secret",
                ..HERE
            },
        ] {
            assert!(cipher.decrypt(&sealed, elsewhere).is_err(), "{elsewhere:?}");
        }
        // What was written before secrets were bound still reads.
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("random");
        let mut legacy = nonce.to_vec();
        legacy.extend(
            cipher
                .aead
                .encrypt(Nonce::from_slice(&nonce), b"old".as_slice())
                .expect("encrypt"),
        );
        assert_eq!(cipher.decrypt(&legacy, HERE).expect("legacy"), "old");
    }

    #[test]
    fn api_keys_round_trip() {
        let key = new_api_key();
        let (id, secret) = parse_api_key(&key.key).expect("parses");
        assert_eq!(id, key.id);
        assert!(verify_secret(secret, &key.secret_hash));
        assert!(!verify_secret("0".repeat(64).as_str(), &key.secret_hash));
        assert!(parse_api_key("hgk_key_abc_short").is_none());
        assert!(parse_api_key("Bearer nonsense").is_none());
    }

    #[test]
    fn signing_secrets_have_the_standard_shape() {
        let s = new_signing_secret();
        let raw = B64
            .decode(s.strip_prefix("whsec_").expect("prefix"))
            .expect("base64");
        assert_eq!(raw.len(), 32);
    }
}
