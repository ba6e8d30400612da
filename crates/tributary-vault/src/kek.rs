//! Key-encryption keys from configuration, and wrapping data keys with them.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::AeadInPlace;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::aad::length_prefixed;
use crate::error::{KeyConfigError, VaultError};
use crate::key::{DataKey, KEY_LEN, NONCE_LEN, TAG_LEN, aes_gcm, fill_random, split_sealed};
use crate::scope::KeyScope;

/// The environment variable holding the KEK ring inline.
pub const KEK_ENV: &str = "TRIBUTARY_KEK";
/// The environment variable naming a file that holds the KEK ring.
pub const KEK_FILE_ENV: &str = "TRIBUTARY_KEK_FILE";

/// Nonce, encrypted key, tag.
const WRAPPED_LEN: usize = NONCE_LEN + KEY_LEN + TAG_LEN;
const MAX_ID_CHARS: usize = 64;
/// Separates the wrapping AAD from the field AAD, although they are used under different
/// keys anyway.
const WRAP_LABEL: &[u8] = b"tributary/v1/data-key";
const GENERATE_HINT: &str = "generate one with `tributary keys generate-kek`";

/// A data key wrapped (AES-256-GCM) by a key-encryption key.
///
/// `bytes` is the 12-byte random nonce followed by the encrypted key and the 16-byte tag.
/// Safe to store and to print: without the KEK it reveals nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    /// Which KEK wrapped it, so a ring holding several can pick the right one.
    pub kek_id: String,
    pub bytes: Vec<u8>,
}

/// The key-encryption keys from configuration.
///
/// The first entry wraps new data keys; every entry unwraps. To rotate, put the new KEK
/// first and keep the old one after it, re-wrap every data key, then drop the old one.
pub struct KekRing {
    /// Never empty; the first is the primary.
    keks: Vec<Kek>,
}

struct Kek {
    id: String,
    key: Box<Zeroizing<[u8; KEY_LEN]>>,
}

impl KekRing {
    /// Parses `id:BASE64` entries separated by commas and/or whitespace (so one entry per
    /// line works too). Each key is standard base64 of exactly 32 bytes; each id is 1-64
    /// characters of `[A-Za-z0-9._-]` and unique in the ring.
    ///
    /// Errors point at the entry's position and never quote the entry, which may hold a key.
    pub fn parse(spec: &str) -> Result<Self, KeyConfigError> {
        let mut keks: Vec<Kek> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let entries = spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|entry| !entry.is_empty());
        for (index, entry) in entries.enumerate() {
            let n = index + 1;
            let Some((id, encoded)) = entry.split_once(':') else {
                return Err(malformed(format!(
                    "entry {n} is not of the form `id:BASE64` (it is not shown because it may \
                     hold a key); {GENERATE_HINT}"
                )));
            };
            check_id(id).map_err(|why| malformed(format!("entry {n} has an invalid id: {why}")))?;
            if let Some(first) = seen.insert(id, n) {
                return Err(malformed(format!(
                    "entries {first} and {n} both use the id {id:?}; give each KEK its own id"
                )));
            }
            let key = decode_key(encoded).map_err(|why| {
                malformed(format!("entry {n} (id {id:?}): {why}; {GENERATE_HINT}"))
            })?;
            keks.push(Kek {
                id: id.to_owned(),
                key,
            });
        }
        if keks.is_empty() {
            return Err(malformed(format!(
                "no key-encryption keys found; expected `id:BASE64` entries separated by commas \
                 or new lines; {GENERATE_HINT}"
            )));
        }
        Ok(Self { keks })
    }

    /// Reads the ring from configuration: `env` is the value of `TRIBUTARY_KEK` if set,
    /// `file` the path in `TRIBUTARY_KEK_FILE` if set. Exactly one must be given.
    ///
    /// A blank `TRIBUTARY_KEK` counts as unset, because deployment templates often define
    /// the variable empty.
    pub fn from_config(env: Option<&str>, file: Option<&Path>) -> Result<Self, KeyConfigError> {
        let env = env.filter(|value| !value.trim().is_empty());
        match (env, file) {
            (None, None) => Err(KeyConfigError::Missing),
            (Some(_), Some(_)) => Err(KeyConfigError::Conflicting),
            (Some(spec), None) => Self::parse(spec).map_err(|e| located(e, KEK_ENV)),
            (None, Some(path)) => {
                let spec = std::fs::read_to_string(path)
                    .map(Zeroizing::new)
                    .map_err(|source| KeyConfigError::Io {
                        path: path.to_owned(),
                        source,
                    })?;
                Self::parse(&spec)
                    .map_err(|e| located(e, &format!("{KEK_FILE_ENV} ({})", path.display())))
            }
        }
    }

    /// The id of the KEK that wraps new data keys.
    pub fn primary_id(&self) -> &str {
        &self.keks[0].id
    }

    /// A 32-byte key for another purpose (e.g. signing OAuth `state`), derived from the
    /// primary KEK with HMAC-SHA256 over `purpose`. It changes when the primary KEK
    /// does, so use it only for short-lived values (minutes), never for stored data.
    pub fn derive(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.keks[0].key[..])
            .expect("HMAC takes a key of any length");
        mac.update(b"tributary/v1/derive/");
        mac.update(purpose.as_bytes());
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// Every configured id, primary first.
    pub fn ids(&self) -> Vec<&str> {
        self.keks.iter().map(|kek| kek.id.as_str()).collect()
    }

    /// Whether `kek_id` can unwrap, e.g. to check before removing an old KEK.
    pub fn contains(&self, kek_id: &str) -> bool {
        self.find(kek_id).is_some()
    }

    /// Wraps `key` under the primary KEK with a random nonce.
    ///
    /// The associated data binds scope kind, scope id and version, so a wrapped key cannot be
    /// swapped to another org, user or version.
    pub fn wrap(&self, key: &DataKey, scope: KeyScope, version: u32) -> WrappedKey {
        let kek = &self.keks[0];
        let mut nonce = [0; NONCE_LEN];
        fill_random(&mut nonce);
        // Sized up front and encrypted in place: no reallocation strands a copy of the key.
        let mut bytes = Vec::with_capacity(WRAPPED_LEN);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(key.bytes());
        let tag = aes_gcm(&kek.key)
            .encrypt_in_place_detached(
                (&nonce).into(),
                &wrap_aad(scope, version),
                &mut bytes[NONCE_LEN..],
            )
            .expect("AES-GCM accepts a 32-byte message");
        bytes.extend_from_slice(&tag);
        WrappedKey {
            kek_id: kek.id.clone(),
            bytes,
        }
    }

    /// Unwraps a data key with whichever configured KEK wrapped it.
    ///
    /// Fails with [`VaultError::UnknownKek`] if that KEK is not configured, and with
    /// [`VaultError::Tampered`] if the bytes were altered, belong to another scope or
    /// version, or the KEK under that id is not the one that wrapped them.
    pub fn unwrap(
        &self,
        wrapped: &WrappedKey,
        scope: KeyScope,
        version: u32,
    ) -> Result<DataKey, VaultError> {
        let kek = self
            .find(&wrapped.kek_id)
            .ok_or_else(|| VaultError::UnknownKek(wrapped.kek_id.clone()))?;
        let parts = split_sealed(&wrapped.bytes).filter(|(_, body, _)| body.len() == KEY_LEN);
        let Some((nonce, body, tag)) = parts else {
            return Err(VaultError::Malformed(format!(
                "a wrapped data key is {WRAPPED_LEN} bytes (nonce, key, tag), this one is {}",
                wrapped.bytes.len()
            )));
        };
        let mut key = DataKey::zeroed();
        key.bytes_mut().copy_from_slice(body);
        aes_gcm(&kek.key)
            .decrypt_in_place_detached(
                nonce.into(),
                &wrap_aad(scope, version),
                key.bytes_mut(),
                tag.into(),
            )
            .map_err(|_| VaultError::Tampered)?;
        Ok(key)
    }

    /// A new random entry `id:BASE64` to add to the configuration.
    pub fn generate_entry(id: &str) -> Result<String, KeyConfigError> {
        check_id(id).map_err(|why| malformed(format!("invalid KEK id: {why}")))?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        fill_random(&mut key[..]);
        Ok(format!("{id}:{}", STANDARD.encode(&key[..])))
    }

    fn find(&self, kek_id: &str) -> Option<&Kek> {
        self.keks.iter().find(|kek| kek.id == kek_id)
    }
}

/// Shows the ids only.
impl fmt::Debug for KekRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KekRing")
            .field("primary", &self.primary_id())
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

fn wrap_aad(scope: KeyScope, version: u32) -> Vec<u8> {
    length_prefixed(&[
        WRAP_LABEL,
        scope.kind().as_bytes(),
        scope.id().as_bytes(),
        &version.to_be_bytes(),
    ])
}

fn check_id(id: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    let chars = id.chars().count();
    if chars == 0 {
        Err("it is empty; ids are 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and '-'".into())
    } else if chars > MAX_ID_CHARS {
        Err(format!(
            "it is {chars} characters long; ids are at most {MAX_ID_CHARS}"
        ))
    } else if !id.chars().all(allowed) {
        Err("ids may only contain A-Z, a-z, 0-9, '.', '_' and '-'".into())
    } else {
        Ok(())
    }
}

/// Decodes into a zeroized buffer; the error never includes the decoder's message, which
/// quotes the offending character of the key.
fn decode_key(encoded: &str) -> Result<Box<Zeroizing<[u8; KEY_LEN]>>, String> {
    // Allocated once at full size so decoding never reallocates and strands a copy.
    let mut decoded = Zeroizing::new(Vec::with_capacity(encoded.len()));
    STANDARD.decode_vec(encoded, &mut decoded).map_err(|_| {
        "the key is not valid standard base64 (A-Z, a-z, 0-9, '+' and '/', padded with '=')"
            .to_owned()
    })?;
    if decoded.len() != KEY_LEN {
        return Err(format!(
            "the key is {} bytes, but a KEK must be exactly {KEY_LEN} bytes (AES-256)",
            decoded.len()
        ));
    }
    let mut key = Box::new(Zeroizing::new([0; KEY_LEN]));
    key.copy_from_slice(&decoded);
    Ok(key)
}

fn malformed(message: String) -> KeyConfigError {
    KeyConfigError::Malformed(message)
}

/// Prefixes a parse error with where the configuration came from.
fn located(error: KeyConfigError, source: &str) -> KeyConfigError {
    match error {
        KeyConfigError::Malformed(message) => malformed(format!("{source}: {message}")),
        other => other,
    }
}

#[cfg(test)]
mod tests;
