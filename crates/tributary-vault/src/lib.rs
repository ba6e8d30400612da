//! Envelope encryption for the secrets and personal data Tributary stores.
//!
//! # Why envelopes
//!
//! Connector credentials belong to an org and personal data belongs to a user, and both must
//! be destroyable on their own: an org that leaves, or a user who asks to be forgotten, must
//! be able to make their data unreadable without rewriting the event log. So nothing is
//! encrypted directly under a configured key. Instead:
//!
//! - Each [`KeyScope`] (one org, or one user) has its own random [`DataKey`]s, numbered by
//!   version. Destroying a scope's data keys *crypto-shreds* everything sealed under them,
//!   including copies in the append-only log, and in backups once the backups that still
//!   hold the wrapped keys have expired ([`VaultError::Shredded`]).
//! - Data keys are stored only wrapped ([`WrappedKey`]) by a key-encryption key (KEK) from
//!   configuration ([`KekRing`]). The database alone therefore reveals nothing, and rotating a
//!   KEK means re-wrapping a few small keys rather than re-encrypting every value. The ring's
//!   first KEK wraps, every KEK in it unwraps, so old and new can be configured together
//!   while the re-wrap runs.
//!
//! # Binding ciphertexts to where they belong
//!
//! Both layers use AES-256-GCM, and both put the ciphertext's place in the associated data,
//! so a value copied somewhere else fails to open instead of quietly decrypting:
//!
//! - a wrapped key is bound to its scope kind, scope id and version, so one org's key cannot
//!   be planted in another org's row, nor an old version passed off as the current one;
//! - a sealed field ([`seal`]) is bound to scope, record and field ([`FieldRef`]), so an
//!   attacker with write access to the database cannot move an org's API token into a field
//!   that is shown to another org, or a password into a field that is displayed.
//!
//! Each part of the associated data is length-prefixed, so two different places can never
//! produce the same bytes (`"ab" + "c"` versus `"a" + "bc"`).
//!
//! # Nonces and retirement
//!
//! GCM fails badly if a nonce ever repeats under one key: it leaks the XOR of the plaintexts
//! and lets an attacker forge messages. A field's nonce is 4 random bytes followed by the data
//! key's 8-byte encryption counter, which the caller reserves from the key store, so nonces
//! are unique by construction; the random part only matters if a counter is ever handed out
//! twice (say after restoring the key store from a backup). A data key is retired, and a new
//! version started, after [`RETIRE_AFTER_ENCRYPTIONS`] encryptions or [`MAX_KEY_AGE_DAYS`]
//! days, whichever comes first. Older versions stay around to open what they sealed.
//!
//! Wrapping uses a fully random 96-bit nonce: a KEK wraps one key per scope and version, a
//! tiny number next to the 2^32 random-nonce limit of NIST SP 800-38D.
//!
//! # What this crate does not do
//!
//! It has no storage and no clock: the key store decides which version is current, hands out
//! counters and records shredding; this crate only does the cryptography and formats. The
//! only I/O is reading the KEK file in [`KekRing::from_config`].
//!
//! Key material and plaintext never appear in `Debug` output or error messages: key types
//! print `[redacted]`, and parse errors point at the entry number instead of echoing it.

mod aad;
mod error;
mod index;
mod kek;
mod key;
mod scope;
mod seal;
mod secret;

pub use error::{KeyConfigError, Result, VaultError};
pub use index::{BlindIndex, INDEX_PREFIX, is_index};
pub use kek::{KEK_ENV, KEK_FILE_ENV, KekRing, WrappedKey};
pub use key::{DataKey, MAX_KEY_AGE_DAYS, RETIRE_AFTER_ENCRYPTIONS};
pub use scope::KeyScope;
pub use seal::{FieldRef, is_sealed, open, seal, sealed_version};
pub use secret::{Secret, mask};
