//! Credentials: the kinds Tributary knows (one JSON Schema each, in
//! `schemas/credentials/`), validation that cannot leak a secret, the split of a value
//! into non-secret config and secrets to encrypt, and live checks against each source.
//!
//! A credential value is one flat JSON object holding every field of its kind. Fields
//! marked `"writeOnly": true` in the schema are secret.

mod check;
mod kind;

pub use check::{CheckResult, CheckStatus, check};
pub use kind::{CredentialKind, FieldError, Kinds};
