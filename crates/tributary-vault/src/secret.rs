//! Plaintext secrets in memory, and showing them masked.

use std::fmt;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

const MASK: &str = "••••••••";
/// Below this many characters, four of them are too large a share of the secret to show.
const REVEAL_MIN_CHARS: usize = 16;
const REVEALED_CHARS: usize = 4;

/// A masked display of a secret, so people can tell theirs apart: `••••••••wxyz` with the
/// last four characters when the secret is at least 16 characters long, `••••••••` when
/// shorter. The mask length is fixed, so it does not give away the secret's length either.
/// Counts characters, not bytes, so it never splits a multi-byte character.
pub fn mask(secret: &str) -> String {
    let chars = secret.chars().count();
    if chars < REVEAL_MIN_CHARS {
        return MASK.to_owned();
    }
    let tail_start = secret
        .char_indices()
        .nth(chars - REVEALED_CHARS)
        .map_or(secret.len(), |(at, _)| at);
    format!("{MASK}{}", &secret[tail_start..])
}

/// A plaintext secret in memory, such as an API token a user just typed.
///
/// Zeroized on drop; `Debug` and `Display` print `[redacted]`, so it cannot end up in logs
/// by accident. It deserializes (request bodies can hold it) but deliberately does not
/// serialize: to store it, [`seal`](crate::seal) it; to show it, [`mask`] it. Not `Clone`,
/// so copies are made on purpose through [`Secret::expose`].
///
/// Zeroizing covers this value only: buffers a deserializer used on the way in are beyond
/// its reach.
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    /// The plaintext, for sealing it or handing it to the service it authenticates to.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_fully_masked() {
        assert_eq!(mask(""), "••••••••");
        assert_eq!(mask("abc"), "••••••••");
        assert_eq!(mask("fifteen-chars-x"), "••••••••");
    }

    #[test]
    fn long_secrets_show_their_last_four_characters() {
        assert_eq!(mask("sixteen-chars-xy"), "••••••••s-xy");
        assert_eq!(mask("sk_live_abcdefghijklmnopqrstuvwxyz"), "••••••••wxyz");
    }

    #[test]
    fn mask_counts_characters_not_bytes() {
        // 15 characters but more than 16 bytes: still fully masked.
        let short = "ééééééééééééééé";
        assert_eq!(short.chars().count(), 15);
        assert!(short.len() >= REVEAL_MIN_CHARS);
        assert_eq!(mask(short), "••••••••");
        assert_eq!(mask("0123456789ab🔑😀éü"), "••••••••🔑😀éü");
    }

    #[test]
    fn mask_never_reveals_more_than_four_characters() {
        for len in 0..40 {
            let secret: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCD"
                .chars()
                .take(len)
                .collect();
            let shown = mask(&secret).trim_start_matches('•').chars().count();
            assert!(shown <= REVEALED_CHARS);
        }
    }

    #[test]
    fn secret_never_prints_its_value() {
        let secret = Secret::new("hunter2-but-longer".into());
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.to_string(), "[redacted]");
        assert_eq!(secret.expose(), "hunter2-but-longer");
    }

    #[test]
    fn secret_deserializes_from_a_request_body() {
        #[derive(Deserialize, Debug)]
        struct Body {
            token: Secret,
        }
        let body: Body = serde_json::from_str(r#"{"token":"xoxb-123"}"#).unwrap();
        assert_eq!(body.token.expose(), "xoxb-123");
        assert!(!format!("{body:?}").contains("xoxb"));
    }
}
