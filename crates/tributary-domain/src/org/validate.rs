use crate::aggregate::{Rejection, RejectionCode};
use regex::Regex;
use std::sync::LazyLock;

pub const NAME_MAX_CHARS: usize = 200;

static SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new("^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$").expect("slug pattern"));

/// A slug is what appears in URLs: 1–63 lowercase letters, digits and inner hyphens.
pub fn validate_slug(slug: &str) -> Result<(), Rejection> {
    if SLUG.is_match(slug) {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::Invalid,
            format!(
                "slug {slug:?} is not valid: use 1 to 63 lowercase letters, digits and hyphens, \
                 starting and ending with a letter or digit"
            ),
        ))
    }
}

pub fn validate_name(name: &str) -> Result<(), Rejection> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            "name must not be empty",
        ));
    }
    if trimmed.chars().count() > NAME_MAX_CHARS {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            format!("name is longer than {NAME_MAX_CHARS} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Rejection::new(
            RejectionCode::Invalid,
            "name must not contain control characters",
        ));
    }
    Ok(())
}

pub const API_KEY_PREFIX_MAX_CHARS: usize = 32;
pub const MAX_ALLOWED_DOMAINS: usize = 50;

/// The visible start of an API key: letters, digits, `_` and `-`.
pub(super) fn validate_prefix(prefix: &str) -> Result<(), Rejection> {
    let ok = (1..=API_KEY_PREFIX_MAX_CHARS).contains(&prefix.len())
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectionCode::Invalid,
            format!(
                "the key prefix must be 1 to {API_KEY_PREFIX_MAX_CHARS} letters, digits, _ or -"
            ),
        ))
    }
}
