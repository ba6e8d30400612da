//! Blind indexes: a keyed hash of a value, so that equal values can be found and kept
//! unique (an email reservation) without the value itself being stored or logged.
//!
//! The key is a random 256-bit key kept in the key store like a data key (scope
//! `system`), not derived from the KEK: a KEK rotation must not change any index, or
//! every reservation keyed by one would be lost.

use crate::key::{DataKey, KEY_LEN};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;
use zeroize::Zeroizing;

/// The prefix of every index this version makes; a later scheme gets a new one.
pub const INDEX_PREFIX: &str = "ebi1_";

/// The key of one kind of blind index. Neither `Clone` nor printable.
pub struct BlindIndex(Box<Zeroizing<[u8; KEY_LEN]>>);

impl BlindIndex {
    pub fn from_key(key: &DataKey) -> Self {
        Self(Box::new(Zeroizing::new(*key.bytes())))
    }

    /// `ebi1_` and 64 lowercase hex digits of HMAC-SHA256(key, value). Callers
    /// normalize `value` first (an email address is trimmed and lowercased).
    pub fn index(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.as_slice())
            .expect("HMAC takes a key of any length");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(INDEX_PREFIX.len() + 64);
        out.push_str(INDEX_PREFIX);
        for byte in digest {
            out.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
        }
        out
    }
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindIndex([redacted])")
    }
}

/// Whether `s` has the shape of an index this version makes.
pub fn is_index(s: &str) -> bool {
    s.strip_prefix(INDEX_PREFIX).is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_give_equal_indexes_and_keys_separate_them() {
        let a = BlindIndex::from_key(&DataKey::generate());
        let b = BlindIndex::from_key(&DataKey::generate());
        let x = a.index("ada@example.com");
        assert_eq!(x, a.index("ada@example.com"));
        assert_ne!(x, a.index("bob@example.com"));
        assert_ne!(x, b.index("ada@example.com"));
        assert!(is_index(&x), "{x}");
        assert!(!x.contains("ada"));
        assert!(!is_index("ebi1_xyz"));
        assert_eq!(format!("{a:?}"), "BlindIndex([redacted])");
    }
}
