//! Reading a target's credential: the runtime hands over the decrypted value as JSON.

use reqwest::header::HeaderValue;
use serde_json::Value;

use crate::{Result, SinkError};

/// A secret read from a credential. Its `Debug` hides it, so a sink holding one can be
/// logged without leaking it.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The first of `fields` that holds a non-empty string, so a destination can accept more
/// than one credential kind (`bearer_token`'s `token`, a dedicated kind's own field).
pub(crate) fn secret_field(credential: Option<&Value>, fields: &[&str]) -> Option<Secret> {
    let credential = credential?;
    fields.iter().find_map(|field| {
        credential
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| Secret(s.to_owned()))
    })
}

/// A header value for a secret, marked sensitive so that reqwest's and hyper's debug
/// output never shows it.
pub(crate) fn sensitive_header(kind: &str, value: String) -> Result<HeaderValue> {
    let mut header = HeaderValue::try_from(value).map_err(|_| {
        SinkError::permanent(format!(
            "The {kind} target's credential holds characters that cannot be sent in an HTTP \
             header; save the credential again without line breaks or control characters."
        ))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn takes_the_first_field_present_and_hides_it_from_debug() {
        let credential = json!({ "token": "t-1", "secret": "" });
        let secret = secret_field(Some(&credential), &["secret", "token"]).unwrap();
        assert_eq!(secret.expose(), "t-1");
        assert!(!format!("{secret:?}").contains("t-1"));
        assert!(secret_field(None, &["token"]).is_none());
    }

    #[test]
    fn refuses_a_header_with_a_line_break_without_quoting_it() {
        let error = sensitive_header("r2r", "Bearer a\nb".to_owned()).unwrap_err();
        assert!(!error.message.contains("a\nb"));
        assert!(!error.is_retriable());
    }
}
