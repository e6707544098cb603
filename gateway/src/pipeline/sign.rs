//! The sign stage: Standard Webhooks headers. `webhook-signature` is
//! `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per live secret
//! (space-separated) while a rotated-out secret is still in its overlap.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Why a request could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A secret was not `whsec_` + base64 (never fixed by retrying).
    #[error("signing secret is not whsec_<base64>")]
    BadSecret,
}

/// The three Standard Webhooks headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// `webhook-id`
    pub id: String,
    /// `webhook-timestamp`, seconds.
    pub timestamp: String,
    /// `webhook-signature`
    pub signature: String,
}

/// Signs `body` as message `id` at `timestamp` (seconds) with every secret.
pub fn sign(
    id: &str,
    timestamp: i64,
    body: &[u8],
    secrets: &[&str],
) -> Result<Signature, SignError> {
    let mut signatures = Vec::with_capacity(secrets.len());
    for secret in secrets {
        let key = B64
            .decode(secret.strip_prefix("whsec_").ok_or(SignError::BadSecret)?)
            .map_err(|_| SignError::BadSecret)?;
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignError::BadSecret)?;
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        signatures.push(format!("v1,{}", B64.encode(mac.finalize().into_bytes())));
    }
    Ok(Signature {
        id: id.to_owned(),
        timestamp: timestamp.to_string(),
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification.
    #[test]
    fn matches_the_specification_example() {
        let s = sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
            &["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        )
        .expect("sign");
        assert_eq!(
            s.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn one_signature_per_secret() {
        let s = sign("m", 1, b"{}", &["whsec_AAAA", "whsec_BBBB"]).expect("sign");
        assert_eq!(s.signature.split(' ').count(), 2);
        assert!(sign("m", 1, b"{}", &["nope"]).is_err());
    }
}
