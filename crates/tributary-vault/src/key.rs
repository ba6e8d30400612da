//! Data keys and when to retire them.

use std::fmt;

use aes_gcm::{Aes256Gcm, KeyInit};
use zeroize::Zeroizing;

pub(crate) const KEY_LEN: usize = 32;
/// GCM's standard 96-bit nonce.
pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;

/// A data key is retired (a new version starts) after this many encryptions: 2^24, 256 times
/// below the 2^32 limit NIST SP 800-38D (section 8.3) sets for GCM with random nonces.
///
/// Our nonces carry the key's encryption counter, so they are unique by construction and that
/// limit does not strictly apply. We retire much earlier anyway because:
///
/// - the counter's uniqueness rests on the key store. If it ever handed a counter out twice
///   (a restore from backup, a bug), only the 4 random nonce bytes would keep those two
///   encryptions apart, with a 2^-32 chance of failing each time. Fewer encryptions per key
///   keep both the chance and the damage of such an incident small;
/// - GCM's security margin shrinks with the total data under one key (about σ²/2^128 for σ
///   blocks). At 2^24 values of up to 64 KiB (2^12 blocks) each, σ ≤ 2^36 and the margin
///   stays near 2^-56;
/// - a leaked data key exposes only what that version sealed;
/// - it costs little: a new version is one more wrapped key in the store.
pub const RETIRE_AFTER_ENCRYPTIONS: u64 = 1 << 24;

/// A data key is also retired after this many days, however little it was used, so that no
/// key stays in use (and in caches) indefinitely. 90 days is a common cryptoperiod for
/// data-encryption keys and keeps the number of versions per scope small.
pub const MAX_KEY_AGE_DAYS: i64 = 90;

/// A 256-bit AES key that encrypts the fields of one scope.
///
/// Zeroized on drop. Boxed, so that moving a `DataKey` moves a pointer and leaves no stray
/// copies of the key on the stack. Deliberately neither `Clone` nor printable: `Debug` shows
/// `DataKey([redacted])`, and the bytes never leave this crate except wrapped.
pub struct DataKey(Box<Zeroizing<[u8; KEY_LEN]>>);

impl DataKey {
    /// 32 bytes from the operating system's RNG.
    ///
    /// # Panics
    ///
    /// If the operating system's RNG fails: no key can be made safely without it.
    pub fn generate() -> Self {
        let mut key = Self::zeroed();
        fill_random(key.bytes_mut());
        key
    }

    /// All zeros; only for filling in place, so the key never exists outside the box.
    pub(crate) fn zeroed() -> Self {
        Self(Box::new(Zeroizing::new([0; KEY_LEN])))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8; KEY_LEN] {
        &mut self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// An AES-256-GCM instance for `key`; cheap enough to make per operation, which keeps the
/// expanded key schedule from outliving the call.
pub(crate) fn aes_gcm(key: &[u8; KEY_LEN]) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// Splits `nonce || ciphertext || tag`, or `None` if too short to hold a nonce and a tag.
pub(crate) fn split_sealed(bytes: &[u8]) -> Option<(&[u8; NONCE_LEN], &[u8], &[u8; TAG_LEN])> {
    let (nonce, rest) = bytes.split_first_chunk()?;
    let (body, tag) = rest.split_last_chunk()?;
    Some((nonce, body, tag))
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    // Without an RNG neither keys nor nonces can be made safely; there is nothing better to
    // do than stop.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_random() {
        let a = DataKey::generate();
        let b = DataKey::generate();
        assert_ne!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), &[0; KEY_LEN]);
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = DataKey::generate();
        let debug = format!("{key:?}");
        assert_eq!(debug, "DataKey([redacted])");
        assert!(!debug.contains(&format!("{:?}", key.bytes())));
    }
}
