//! Checks shared by the aggregates for values the schemas also constrain: the schemas
//! guard the topics, these guard callers that build commands in code.

use crate::aggregate::{Rejection, RejectionCode};

pub(crate) const HASH_MIN_CHARS: usize = 16;
pub(crate) const HASH_MAX_CHARS: usize = 256;

/// A token or secret hash as text (hex, base64 or a `alg:` prefixed form).
pub(crate) fn validate_hash(field: &str, hash: &str) -> Result<(), Rejection> {
    let ok = (HASH_MIN_CHARS..=HASH_MAX_CHARS).contains(&hash.len())
        && hash
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_:.$-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::Invalid,
            format!(
                "{field} must be a hash of {HASH_MIN_CHARS} to {HASH_MAX_CHARS} characters \
                 (letters, digits and +/=_:.$-)"
            ),
        ))
    }
}

use crate::credential::SEALED_MAX_CHARS;

/// Sealed values only: a value that is not `tv1.<version>.<data>` may be plaintext (a
/// secret, or personal data) and must not be recorded. The message never quotes it.
pub(crate) fn validate_sealed(field: &str, sealed: &str) -> Result<(), Rejection> {
    let mut parts = sealed.splitn(3, '.');
    let ok = parts.next() == Some("tv1")
        && parts
            .next()
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_some_and(|d| {
            !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && sealed.len() <= SEALED_MAX_CHARS;
    ok.then_some(()).ok_or_else(|| {
        Rejection::new(
            RejectionCode::Invalid,
            format!(
                "{field} must be sealed by the vault (tv1.<version>.<data>); plaintext is \
                 refused"
            ),
        )
    })
}

/// An email address travels only as its blind index: `ebi1_` and 64 hex digits.
pub(crate) fn validate_email_index(index: &str) -> Result<(), Rejection> {
    let ok = index.strip_prefix("ebi1_").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    ok.then_some(()).ok_or_else(|| {
        Rejection::new(
            RejectionCode::Invalid,
            "email_index must be the blind index of an address (ebi1_ and 64 hex digits); \
             addresses never travel in plaintext",
        )
    })
}

/// Compares two hashes in time that does not depend on where they differ.
pub(crate) fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Who did it, for the security log: `user:<uuid>` or `key:<uuid>`.
pub(crate) fn validate_actor(actor: Option<&str>) -> Result<(), Rejection> {
    let Some(actor) = actor else { return Ok(()) };
    let ok = actor.split_once(':').is_some_and(|(kind, id)| {
        matches!(kind, "user" | "key") && uuid::Uuid::parse_str(id).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::Invalid,
            format!("actor {actor:?} must be user:<uuid> or key:<uuid>"),
        ))
    }
}

/// Largest config of a target or a profile's source, serialized: a config names things
/// (paths, URLs, filters), it does not carry data.
pub(crate) const COMPONENT_CONFIG_MAX_BYTES: usize = 64 * 1024;

/// A connector or destination kind name: `^[a-z][a-z0-9_]{0,63}$`. Whether the kind
/// exists is the API's check (the registries live outside the domain); this keeps the
/// log free of names no registry could ever hold.
pub(crate) fn validate_component_kind(what: &str, kind: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&kind.len())
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(()).ok_or_else(|| {
        Rejection::new(
            RejectionCode::Invalid,
            format!(
                "{what} {kind:?} must start with a lowercase letter and have at most 64 \
                 lowercase letters, digits or _"
            ),
        )
    })
}

/// A component's config: at most [`COMPONENT_CONFIG_MAX_BYTES`] as JSON. Its shape is
/// checked against the kind's schema by the API, which knows the kinds.
pub(crate) fn validate_component_config(
    what: &str,
    config: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), Rejection> {
    let size = serde_json::to_vec(config).map_or(usize::MAX, |v| v.len());
    if size > COMPONENT_CONFIG_MAX_BYTES {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            format!(
                "{what} is {size} bytes; at most {COMPONENT_CONFIG_MAX_BYTES} are accepted, so \
                 keep data out of the config"
            ),
        ));
    }
    Ok(())
}

/// For partial updates: a field left out stays as it is (`None`), a field sent as `null`
/// is cleared (`Some(None)`). Use with `#[serde(default, deserialize_with = "present")]`.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_compare_by_content() {
        assert!(same_hash("abcdef", "abcdef"));
        assert!(!same_hash("abcdef", "abcdeg"));
        assert!(!same_hash("abc", "abcd"));
    }

    #[test]
    fn hashes_and_actors_have_a_shape() {
        assert!(validate_hash("token_hash", &"a".repeat(64)).is_ok());
        assert!(validate_hash("token_hash", "short").is_err());
        assert!(validate_hash("token_hash", &format!("{} x", "a".repeat(20))).is_err());
        assert!(validate_actor(None).is_ok());
        assert!(validate_actor(Some("user:0190f0a8-3c4e-7d2a-9b1c-2d3e4f5a6b7c")).is_ok());
        assert!(validate_actor(Some("root")).is_err());
        assert!(validate_actor(Some("user:nope")).is_err());
    }

    #[test]
    fn component_kinds_and_configs_have_limits() {
        assert!(validate_component_kind("kind", "csv").is_ok());
        assert!(validate_component_kind("kind", "a_1").is_ok());
        for bad in ["", "1csv", "_x", "Csv", "a-b", &"a".repeat(65)] {
            assert!(validate_component_kind("kind", bad).is_err(), "{bad}");
        }
        let mut config = serde_json::Map::new();
        config.insert(
            "x".into(),
            serde_json::json!("a".repeat(COMPONENT_CONFIG_MAX_BYTES)),
        );
        assert!(validate_component_config("config", &config).is_err());
        assert!(validate_component_config("config", &serde_json::Map::new()).is_ok());
    }
}
