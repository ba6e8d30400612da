//! Sealing single record fields under a data key.

use aes_gcm::aead::AeadInPlace;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::aad::length_prefixed;
use crate::error::VaultError;
use crate::key::{DataKey, NONCE_LEN, TAG_LEN, aes_gcm, fill_random, split_sealed};
use crate::scope::KeyScope;

/// Marks a sealed value and its format version, so readers can tell sealed values from
/// plaintext stored earlier and a later format can be introduced next to this one.
const PREFIX: &str = "tv1.";
const AAD_LABEL: &[u8] = b"tributary/v1";
const RANDOM_NONCE_LEN: usize = 4;
/// `u32::MAX` has 10 digits.
const MAX_VERSION_DIGITS: usize = 10;

/// Which record field a ciphertext belongs to. It becomes the associated data, so a sealed
/// value only opens at the place it was sealed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldRef<'a> {
    pub scope: KeyScope,
    /// The kind of record and its id, e.g. `connection/0191…`; any stable string will do,
    /// but changing it later makes existing values unopenable.
    pub record: &'a str,
    pub field: &'a str,
}

impl<'a> FieldRef<'a> {
    pub const fn new(scope: KeyScope, record: &'a str, field: &'a str) -> Self {
        Self {
            scope,
            record,
            field,
        }
    }

    /// `"tributary/v1"`, scope kind, scope id, record and field, each length-prefixed so
    /// that no two different refs give the same bytes.
    fn associated_data(&self) -> Vec<u8> {
        length_prefixed(&[
            AAD_LABEL,
            self.scope.kind().as_bytes(),
            self.scope.id().as_bytes(),
            self.record.as_bytes(),
            self.field.as_bytes(),
        ])
    }
}

/// Encrypts one field with AES-256-GCM and returns `tv1.<version>.<payload>`, where payload
/// is base64url without padding of nonce, ciphertext and tag.
///
/// `version` is the data key's version, written out so [`sealed_version`] can find the key
/// again. `counter` is this data key's encryption number, reserved by the caller from the
/// key store (unique per key, starting at 1). The 96-bit nonce is 4 random bytes followed by
/// the counter as 8 bytes big-endian, so nonces never repeat under one key even if the random
/// part does; the random part covers a counter that is handed out twice by mistake.
///
/// # Panics
///
/// If the operating system's RNG fails, or `plaintext` exceeds GCM's limit of about 64 GiB.
pub fn seal(
    key: &DataKey,
    version: u32,
    counter: u64,
    at: &FieldRef<'_>,
    plaintext: &[u8],
) -> String {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce[..RANDOM_NONCE_LEN]);
    nonce[RANDOM_NONCE_LEN..].copy_from_slice(&counter.to_be_bytes());

    // Sized up front and encrypted in place: no reallocation strands a copy of the plaintext.
    let mut payload = Vec::with_capacity(NONCE_LEN + plaintext.len() + TAG_LEN);
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(plaintext);
    let tag = aes_gcm(key.bytes())
        .encrypt_in_place_detached(
            (&nonce).into(),
            &at.associated_data(),
            &mut payload[NONCE_LEN..],
        )
        .expect("a field value is far below AES-GCM's 64 GiB message limit");
    payload.extend_from_slice(&tag);
    format!("{PREFIX}{version}.{}", URL_SAFE_NO_PAD.encode(&payload))
}

/// Decrypts a value made by [`seal`] for the same place with the same data key.
///
/// Fails with [`VaultError::Tampered`] if the data was altered, the value was moved to
/// another scope, record or field, or `key` is not the key it was sealed with; with
/// [`VaultError::Malformed`] if `sealed` is not a sealed value at all.
pub fn open(
    key: &DataKey,
    at: &FieldRef<'_>,
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let (_, payload) = parse(sealed)?;
    let (nonce, ciphertext, tag) = split_sealed(&payload).ok_or_else(too_short)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    aes_gcm(key.bytes())
        .decrypt_in_place_detached(
            nonce.into(),
            &at.associated_data(),
            &mut plaintext,
            tag.into(),
        )
        .map_err(|_| VaultError::Tampered)?;
    Ok(plaintext)
}

/// The data-key version a sealed value was made with, to look the key up before [`open`].
pub fn sealed_version(sealed: &str) -> Result<u32, VaultError> {
    parse(sealed).map(|(version, _)| version)
}

/// Whether `value` has the shape of a sealed value. Says nothing about whether it opens;
/// meant for telling sealed values from plaintext stored before encryption was turned on.
pub fn is_sealed(value: &str) -> bool {
    parse(value).is_ok()
}

/// Splits a sealed value into version and decoded payload (at least a nonce and a tag).
///
/// Messages describe the problem but never quote the input, which may be a plaintext secret.
fn parse(sealed: &str) -> Result<(u32, Vec<u8>), VaultError> {
    let malformed = |why: &str| VaultError::Malformed(why.to_owned());
    let rest = sealed.strip_prefix(PREFIX).ok_or_else(|| {
        malformed(
            "it does not start with `tv1.`, so it is not a sealed value (it may be plaintext \
             stored before encryption was turned on)",
        )
    })?;
    let (digits, encoded) = rest
        .split_once('.')
        .ok_or_else(|| malformed("`tv1.` must be followed by the data-key version and a `.`"))?;
    let canonical = !digits.is_empty()
        && digits.len() <= MAX_VERSION_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    let version = digits
        .parse::<u32>()
        .ok()
        .filter(|_| canonical)
        .ok_or_else(|| malformed("the data-key version after `tv1.` is not a plain number"))?;
    let payload = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| malformed("the payload is not base64url without padding"))?;
    if split_sealed(&payload).is_none() {
        return Err(too_short());
    }
    Ok((version, payload))
}

fn too_short() -> VaultError {
    VaultError::Malformed("the payload is shorter than a nonce and an authentication tag".into())
}

#[cfg(test)]
mod tests;
