//! Errors. None of them carries key material or plaintext: a malformed entry is named by its
//! position, and a malformed sealed value is described, never quoted, because it may be a
//! secret that was stored before encryption was turned on.

use std::path::PathBuf;

pub type Result<T, E = VaultError> = std::result::Result<T, E>;

/// Why a value or a wrapped key could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Not shaped like a sealed value or wrapped key; the reason says what is wrong.
    #[error("malformed encrypted value: {0}")]
    Malformed(String),
    /// Authentication failed. GCM cannot tell these apart, so the message lists them all.
    #[error(
        "the encrypted value failed authentication: it was altered, copied from another \
         org, user, record or field, or opened with the wrong data key; do not use it, and \
         restore it from a backup or ask its owner to enter it again"
    )]
    Tampered,
    /// The wrapping KEK's id is not in the configured ring.
    #[error(
        "the data key is wrapped by key-encryption key {0:?}, which is not configured; add \
         that KEK (id and key) to TRIBUTARY_KEK or TRIBUTARY_KEK_FILE next to the current \
         one, and only remove a KEK after every data key was re-wrapped"
    )]
    UnknownKek(String),
    /// The scope's data key was deliberately destroyed; returned by the key store.
    #[error("the data key was destroyed (crypto-shredded); this value is gone for good")]
    Shredded,
}

/// Why the key-encryption keys could not be loaded or generated.
#[derive(Debug, thiserror::Error)]
pub enum KeyConfigError {
    #[error(
        "no key-encryption key is configured: set TRIBUTARY_KEK to `id:BASE64` entries, or \
         TRIBUTARY_KEK_FILE to the path of a file holding them; generate one with \
         `tributary keys generate-kek`"
    )]
    Missing,
    #[error(
        "both TRIBUTARY_KEK and TRIBUTARY_KEK_FILE are set; unset one of them so that it \
         is clear which keys are in use"
    )]
    Conflicting,
    /// The configuration does not parse; the message names the variable and the entry, and
    /// says how to fix it.
    #[error("{0}")]
    Malformed(String),
    #[error(
        "cannot read TRIBUTARY_KEK_FILE {}: {source}; check the path and that this process \
         may read the file",
        path.display()
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
