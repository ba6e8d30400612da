//! Keeps the credential's secrets out of everything the source reports: errors, warnings,
//! failures and logs are built from the source's own output, which may quote its config.

use serde_json::Value;

use crate::credentials::Kinds;

const MASK: &str = "[redacted]";

/// Replaces every exact occurrence of a secret string.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    /// Longest first, so that a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Adds a secret, with the forms it takes when quoted in JSON or printed line by line
    /// (a PEM key in a traceback).
    pub(crate) fn add(&mut self, secret: &str) {
        let mut forms = vec![secret.to_owned()];
        if let Ok(quoted) = serde_json::to_string(secret) {
            forms.push(quoted[1..quoted.len() - 1].to_owned());
        }
        if secret.contains('\n') {
            forms.extend(
                secret
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.len() >= 16)
                    .map(str::to_owned),
            );
        }
        for form in forms {
            if !form.is_empty() && !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Adds every secret string of a credential value: all its strings, except fields that
    /// no builtin credential kind marks secret and some kind has as a plain field (a
    /// username, a URL, a provider name). Unknown fields count as secret.
    pub(crate) fn add_credential(&mut self, credential: &Value) {
        let kinds = Kinds::builtin();
        let plain = |field: &str| {
            let mut known = false;
            for kind in kinds.all() {
                if kind.is_secret(field) {
                    return false;
                }
                known |= kind
                    .schema
                    .get("properties")
                    .and_then(|p| p.get(field))
                    .is_some();
            }
            known
        };
        match credential {
            Value::Object(fields) => {
                for (field, value) in fields {
                    if !plain(field) {
                        self.add_strings(value);
                    }
                }
            }
            other => self.add_strings(other),
        }
    }

    /// Adds every string inside a value.
    pub(crate) fn add_strings(&mut self, value: &Value) {
        match value {
            Value::String(s) => self.add(s),
            Value::Array(items) => items.iter().for_each(|v| self.add_strings(v)),
            Value::Object(fields) => fields.values().for_each(|v| self.add_strings(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }
}

/// At most `max` bytes of `text`, cut at a character boundary, keeping the end when
/// `tail` (the end of stderr is where the error is).
pub(crate) fn clip(text: &str, max: usize, tail: bool) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    if tail {
        let mut start = text.len() - max;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        format!("…{}", &text[start..])
    } else {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_secrets_and_their_quoted_forms() {
        let mut r = Redactor::default();
        r.add_credential(&json!({
            "username": "crawler",
            "password": "pa\"ss",
            "base_url": "https://example.com",
            "custom": { "nested": "hunter22" }
        }));
        assert_eq!(
            r.redact(r#"user crawler pw pa"ss or "pa\"ss" at https://example.com hunter22"#),
            "user crawler pw [redacted] or \"[redacted]\" at https://example.com [redacted]"
        );
        assert_eq!(format!("{r:?}"), "Redactor(3 secrets)");
    }

    #[test]
    fn masks_lines_of_multiline_secrets() {
        let mut r = Redactor::default();
        r.add_credential(&json!({ "private_key": "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0\n-----END KEY-----\n" }));
        assert_eq!(
            r.redact("bad key line MIIEvQIBADANBgkqhkiG9w0"),
            "bad key line [redacted]"
        );
    }

    #[test]
    fn clips_at_character_boundaries() {
        assert_eq!(clip("ééé", 3, true), "…é");
        assert_eq!(clip("ééé", 3, false), "é…");
        assert_eq!(clip("abc", 3, false), "abc");
    }
}
