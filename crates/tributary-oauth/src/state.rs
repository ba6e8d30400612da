//! The OAuth `state` parameter: signed, expiring, and single-use with the caller's help.
//!
//! Format: `base64url(json(StateClaims)) "." base64url(HMAC-SHA256(key, "state." || payload))`,
//! both without padding. The signature covers the encoded payload exactly as transmitted.
//!
//! **Single use is the caller's job.** A valid signature proves that we issued the state, not
//! that it is the first time it comes back. The callback handler must record
//! [`StateClaims::nonce`] (it may forget it after [`StateClaims::expires_at`]) and refuse a
//! nonce it has already seen — before exchanging the code.
//!
//! **The PKCE verifier is derived, not carried.** The state crosses the browser, so it must not
//! contain the verifier. [`StateSigner::pkce_verifier_for`] derives it from the key and the
//! nonce, so the callback can recompute it without any server-side storage.

use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use oauth2::{PkceCodeChallenge, PkceCodeVerifier};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

/// How long a user has to complete the provider's consent screen.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(10 * 60);

/// The longest lifetime [`StateSigner::issue`] accepts. It bounds how long the caller must
/// remember used nonces.
pub const MAX_STATE_TTL: Duration = Duration::from_secs(60 * 60);

/// A state longer than this is refused before any decoding work.
const MAX_STATE_LEN: usize = 4096;

type HmacSha256 = Hmac<Sha256>;

/// What the state carries from the authorize request to the callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateClaims {
    /// The provider the flow was started for; the callback must be for the same one.
    pub provider: String,
    pub org_id: Uuid,
    pub user_id: Uuid,
    /// Unique per flow. The caller records it on the callback to make the state single-use;
    /// it also seeds the PKCE verifier.
    pub nonce: Uuid,
    pub expires_at: DateTime<Utc>,
    /// Where to send the user afterwards. Signed, so it is what the issuer put there — the
    /// issuer must only put a path of our own application here (no open redirect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_after: Option<String>,
}

impl StateClaims {
    /// Claims for a new flow: a fresh random nonce, expiring [`DEFAULT_STATE_TTL`] from `now`.
    pub fn new(
        provider: impl Into<String>,
        org_id: Uuid,
        user_id: Uuid,
        redirect_after: Option<String>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            provider: provider.into(),
            org_id,
            user_id,
            nonce: Uuid::new_v4(),
            expires_at: now + to_delta(DEFAULT_STATE_TTL),
            redirect_after,
        }
    }
}

/// Why a state was refused. The messages are safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the OAuth state is malformed; start the connection again from Tributary")]
    Malformed,
    #[error(
        "the OAuth state has an invalid signature (it was altered or not issued by this \
         server); start the connection again from Tributary"
    )]
    BadSignature,
    #[error(
        "the OAuth state has expired (the consent screen was open too long); start the \
         connection again"
    )]
    Expired,
    #[error(
        "the OAuth state was issued for provider `{issued_for}` but came back to the callback \
         of `{callback}`; start the connection again"
    )]
    WrongProvider {
        issued_for: String,
        callback: String,
    },
}

/// Signs and verifies states, and derives PKCE verifiers, with one 32-byte secret key.
///
/// Every server instance that may receive a callback must use the same key.
#[derive(Clone)]
pub struct StateSigner {
    key: [u8; 32],
}

impl fmt::Debug for StateSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateSigner")
            .field("key", &"[redacted]")
            .finish()
    }
}

impl StateSigner {
    pub const fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new_from_slice(&self.key).expect("HMAC accepts keys of any size")
    }

    fn state_mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = self.mac();
        mac.update(b"state.");
        mac.update(payload.as_bytes());
        mac
    }

    /// Signs `claims` into a state string.
    ///
    /// The lifetime is capped at [`MAX_STATE_TTL`] from `now`, so that a caller's nonce
    /// store never has to remember a nonce for longer than that.
    pub fn issue(&self, mut claims: StateClaims, now: DateTime<Utc>) -> String {
        let latest = now + to_delta(MAX_STATE_TTL);
        if claims.expires_at > latest {
            claims.expires_at = latest;
        }
        let json = serde_json::to_vec(&claims).expect("state claims serialize");
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(self.state_mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// Checks a state that came back on the callback of `provider`.
    ///
    /// The signature is checked (in constant time) before anything is parsed. This does
    /// **not** make the state single-use: record `claims.nonce` and refuse one seen before.
    pub fn verify(
        &self,
        state: &str,
        provider: &str,
        now: DateTime<Utc>,
    ) -> Result<StateClaims, StateError> {
        if state.len() > MAX_STATE_LEN {
            return Err(StateError::Malformed);
        }
        let (payload, signature) = state.split_once('.').ok_or(StateError::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| StateError::Malformed)?;
        self.state_mac(payload)
            .verify_slice(&signature)
            .map_err(|_| StateError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Malformed)?;
        let claims: StateClaims =
            serde_json::from_slice(&json).map_err(|_| StateError::Malformed)?;
        if claims.provider != provider {
            return Err(StateError::WrongProvider {
                issued_for: claims.provider,
                callback: provider.to_owned(),
            });
        }
        if now >= claims.expires_at {
            return Err(StateError::Expired);
        }
        Ok(claims)
    }

    /// The PKCE code verifier for the flow with this nonce:
    /// `base64url(HMAC-SHA256(key, "pkce" || nonce))`, 43 characters of the RFC 7636 set.
    pub fn pkce_verifier_for(&self, nonce: Uuid) -> PkceCodeVerifier {
        let mut mac = self.mac();
        mac.update(b"pkce");
        mac.update(nonce.as_bytes());
        PkceCodeVerifier::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
    }

    /// The S256 challenge of [`StateSigner::pkce_verifier_for`], for the authorize URL.
    pub fn pkce_challenge_for(&self, nonce: Uuid) -> PkceCodeChallenge {
        PkceCodeChallenge::from_code_verifier_sha256(&self.pkce_verifier_for(nonce))
    }
}

fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).expect("state lifetimes fit in a TimeDelta")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> StateSigner {
        StateSigner::new([7; 32])
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn claims() -> StateClaims {
        StateClaims::new(
            "github",
            Uuid::new_v4(),
            Uuid::new_v4(),
            Some("/settings/credentials".to_owned()),
            now(),
        )
    }

    #[test]
    fn round_trip() {
        let claims = claims();
        let state = signer().issue(claims.clone(), now());
        assert!(
            state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "URL-safe: {state}"
        );
        let back = signer().verify(&state, "github", now()).unwrap();
        assert_eq!(back, claims);
        assert_eq!(back.expires_at, now() + TimeDelta::minutes(10));
    }

    #[test]
    fn tampered_payload_or_signature_is_refused() {
        let state = signer().issue(claims(), now());
        let (payload, signature) = state.split_once('.').unwrap();

        let mut forged = claims();
        forged.org_id = Uuid::new_v4();
        let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        assert_eq!(
            signer().verify(&format!("{forged_payload}.{signature}"), "github", now()),
            Err(StateError::BadSignature)
        );

        let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
        sig[0] ^= 1;
        let state2 = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            signer().verify(&state2, "github", now()),
            Err(StateError::BadSignature)
        );

        let other_key = StateSigner::new([8; 32]);
        assert_eq!(
            other_key.verify(&state, "github", now()),
            Err(StateError::BadSignature)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "abc", "a.b.c", "!!!.???", &"x".repeat(5000)] {
            assert_eq!(
                signer().verify(bad, "github", now()),
                Err(StateError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn expired_state_is_refused() {
        let state = signer().issue(claims(), now());
        let later = now() + TimeDelta::minutes(10);
        assert_eq!(
            signer().verify(&state, "github", later),
            Err(StateError::Expired)
        );
        assert!(
            signer()
                .verify(&state, "github", later - TimeDelta::seconds(1))
                .is_ok()
        );
    }

    #[test]
    fn state_for_another_provider_is_refused() {
        let state = signer().issue(claims(), now());
        assert_eq!(
            signer().verify(&state, "slack", now()),
            Err(StateError::WrongProvider {
                issued_for: "github".to_owned(),
                callback: "slack".to_owned()
            })
        );
    }

    #[test]
    fn lifetime_is_capped() {
        let mut c = claims();
        c.expires_at = now() + TimeDelta::days(30);
        let state = signer().issue(c, now());
        let back = signer().verify(&state, "github", now()).unwrap();
        assert_eq!(back.expires_at, now() + TimeDelta::hours(1));
    }

    #[test]
    fn pkce_verifier_is_deterministic_valid_and_not_in_the_state() {
        let c = claims();
        let v1 = signer().pkce_verifier_for(c.nonce);
        let v2 = signer().pkce_verifier_for(c.nonce);
        assert_eq!(v1.secret(), v2.secret());
        assert_ne!(
            v1.secret(),
            signer().pkce_verifier_for(Uuid::new_v4()).secret()
        );
        assert_ne!(
            v1.secret(),
            StateSigner::new([8; 32])
                .pkce_verifier_for(c.nonce)
                .secret()
        );
        // RFC 7636 §4.1: 43..=128 characters of [A-Z a-z 0-9 - . _ ~].
        assert!((43..=128).contains(&v1.secret().len()));
        assert!(
            v1.secret()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        );
        let state = signer().issue(c.clone(), now());
        assert!(!state.contains(v1.secret().as_str()));
        assert_eq!(
            signer().pkce_challenge_for(c.nonce).as_str(),
            PkceCodeChallenge::from_code_verifier_sha256(&v1).as_str()
        );
    }

    #[test]
    fn debug_hides_the_key() {
        assert!(!format!("{:?}", signer()).contains('7'));
    }
}
