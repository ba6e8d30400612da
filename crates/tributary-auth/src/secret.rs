//! Opaque secrets: refresh tokens, invitation tokens and API keys.
//!
//! Each is 32 bytes from the operating system's RNG, shown to its owner once, and stored only
//! as a hash, so a database leak does not hand out working credentials. Unlike passwords these
//! have 256 bits of entropy: nobody can brute-force them whatever the hash costs, so a single
//! SHA-256 is enough and lookups stay cheap enough to run on every request. argon2id would add
//! cost without adding safety.
//!
//! A short type prefix (`trt_`, `tri_`, `trk_`) tells a leaked token's kind at a glance and lets
//! secret scanners recognise it. API keys also carry a public lookup prefix that listings show,
//! so people can tell their keys apart without the secret.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const REFRESH_TOKEN_PREFIX: &str = "trt_";
pub const INVITATION_TOKEN_PREFIX: &str = "tri_";
pub const API_KEY_PREFIX: &str = "trk_";
/// Length of an API key's public prefix (lowercase base32: 50 bits).
pub const API_KEY_PREFIX_LENGTH: usize = 10;

const SECRET_BYTES: usize = 32;
/// base64url without padding of [`SECRET_BYTES`].
const SECRET_CHARS: usize = 43;
const BASE32_LOWER: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A freshly made secret: hand `token` to its owner once, store `hash`.
pub struct Issued {
    pub token: String,
    /// [`hash_token`] of `token`.
    pub hash: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("token", &"[redacted]")
            .field("hash", &self.hash)
            .finish()
    }
}

/// A freshly made API key: hand `token` to its owner once, store `prefix` and `hash`.
pub struct IssuedKey {
    /// `trk_<prefix>_<secret>`.
    pub token: String,
    /// Public, for listings and lookup.
    pub prefix: String,
    /// [`hash_token`] of `token`.
    pub hash: String,
}

impl fmt::Debug for IssuedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedKey")
            .field("token", &"[redacted]")
            .field("prefix", &self.prefix)
            .field("hash", &self.hash)
            .finish()
    }
}

/// `trt_` followed by 32 random bytes in base64url.
pub fn refresh_token() -> Issued {
    prefixed(REFRESH_TOKEN_PREFIX)
}

/// `tri_` followed by 32 random bytes in base64url.
pub fn invitation_token() -> Issued {
    prefixed(INVITATION_TOKEN_PREFIX)
}

/// `trk_<prefix>_<secret>`: a 10-character lowercase base32 prefix and 32 random bytes in
/// base64url.
pub fn api_key() -> IssuedKey {
    let mut raw = [0u8; API_KEY_PREFIX_LENGTH];
    fill_random(&mut raw);
    // 256 is a multiple of 32, so masking keeps every character equally likely.
    let prefix: String = raw
        .iter()
        .map(|b| char::from(BASE32_LOWER[usize::from(b & 31)]))
        .collect();
    let token = format!("{API_KEY_PREFIX}{prefix}_{}", random_secret());
    IssuedKey {
        hash: hash_token(&token),
        token,
        prefix,
    }
}

/// The public prefix of a token shaped like an API key, or `None` for anything else.
pub fn api_key_prefix(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?;
    let prefix = rest.get(..API_KEY_PREFIX_LENGTH)?;
    let secret = rest.get(API_KEY_PREFIX_LENGTH..)?.strip_prefix('_')?;
    let prefix_ok = prefix.bytes().all(|b| BASE32_LOWER.contains(&b));
    let secret_ok = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (prefix_ok && secret_ok).then_some(prefix)
}

/// Lowercase hex SHA-256 of the whole token, prefix included (64 characters).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares two hashes in time that does not depend on where they differ.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn prefixed(prefix: &str) -> Issued {
    let token = format!("{prefix}{}", random_secret());
    Issued {
        hash: hash_token(&token),
        token,
    }
}

fn random_secret() -> String {
    let mut bytes = [0u8; SECRET_BYTES];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn fill_random(buf: &mut [u8]) {
    // Without an RNG no secret can be made safely; there is nothing better to do than stop.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_base64url(s: &str) -> bool {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

    #[test]
    fn refresh_and_invitation_tokens_have_their_shape() {
        for (issued, prefix) in [
            (refresh_token(), REFRESH_TOKEN_PREFIX),
            (invitation_token(), INVITATION_TOKEN_PREFIX),
        ] {
            let secret = issued.token.strip_prefix(prefix).unwrap();
            assert_eq!(secret.len(), SECRET_CHARS);
            assert!(is_base64url(secret), "{secret}");
            assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
            assert_eq!(issued.hash, hash_token(&issued.token));
            assert_eq!(api_key_prefix(&issued.token), None);
        }
    }

    #[test]
    fn tokens_are_random() {
        assert_ne!(refresh_token().token, refresh_token().token);
        assert_ne!(invitation_token().token, invitation_token().token);
        let (a, b) = (api_key(), api_key());
        assert_ne!(a.token, b.token);
        assert_ne!(a.prefix, b.prefix);
    }

    #[test]
    fn api_keys_have_their_shape_and_their_prefix_parses_back() {
        let key = api_key();
        assert_eq!(key.prefix.len(), API_KEY_PREFIX_LENGTH);
        assert!(
            key.prefix.bytes().all(|b| BASE32_LOWER.contains(&b)),
            "{}",
            key.prefix
        );
        let expected_start = format!("trk_{}_", key.prefix);
        assert!(key.token.starts_with(&expected_start), "{}", key.token);
        assert_eq!(key.token.len(), expected_start.len() + SECRET_CHARS);
        assert_eq!(api_key_prefix(&key.token), Some(key.prefix.as_str()));
        assert_eq!(key.hash, hash_token(&key.token));
    }

    #[test]
    fn api_key_prefix_rejects_other_shapes() {
        let secret = "A".repeat(SECRET_CHARS);
        assert_eq!(
            api_key_prefix(&format!("trk_abcde23456_{secret}")),
            Some("abcde23456")
        );
        for bad in [
            String::new(),
            "trk_".to_owned(),
            format!("trt_abcde23456_{secret}"),
            format!("trk_ABCDE23456_{secret}"),
            format!("trk_abcde1_{secret}"),
            format!("trk_abcde23456{secret}"),
            format!("trk_abcde23456_{secret}A"),
            format!("trk_abcde23456_{}", &secret[1..]),
            format!("trk_abcde23456_{}=", &secret[1..]),
            format!("trk_abcdé2345_{secret}"),
        ] {
            assert_eq!(api_key_prefix(&bad), None, "{bad}");
        }
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        let hash = hash_token("trt_example");
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(hash_token("trt_a"), hash_token("trt_b"));
    }

    #[test]
    fn hashes_match_only_when_equal() {
        let a = hash_token("trt_a");
        assert!(hashes_match(&a, &a.clone()));
        assert!(!hashes_match(&a, &hash_token("trt_b")));
        assert!(!hashes_match(&a, &a[..63]));
        assert!(!hashes_match(&a, ""));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let issued = refresh_token();
        let debug = format!("{issued:?}");
        assert!(!debug.contains(&issued.token), "{debug}");
        assert!(debug.contains(&issued.hash), "{debug}");

        let key = api_key();
        let debug = format!("{key:?}");
        assert!(!debug.contains(&key.token), "{debug}");
        assert!(!debug.contains(&key.token[15..]), "{debug}");
        assert!(debug.contains(&key.prefix), "{debug}");
    }
}
