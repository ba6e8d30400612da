//! Titles, texts and links written as a JSON pointer (`/name`) or as a template with
//! pointer placeholders (`{/first} {/last}`), and how a JSON value reads as text.

use serde_json::Value;

/// A parsed title, text or link mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Template {
    /// The value at one pointer, as text.
    Pointer(String),
    /// Literal text with values spliced in; missing values read as empty.
    Pieces(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    Pointer(String),
}

impl Template {
    /// A string starting with `/` and without braces is a pointer; anything else is a
    /// template. The error completes a sentence about the field.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with('/') && !s.contains(['{', '}']) {
            return Ok(Self::Pointer(s.to_owned()));
        }
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut pointer = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => pointer.push(c),
                            None => {
                                return Err(format!(
                                    "has a {{ without its closing }} ({s:?}); write {{{{ for a literal brace"
                                ));
                            }
                        }
                    }
                    if !pointer.starts_with('/') {
                        return Err(format!(
                            "has a placeholder {{{pointer}}} that is not a JSON pointer; write it like {{/field}}"
                        ));
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Pointer(pointer));
                }
                '}' => {
                    return Err(format!(
                        "has a }} without its opening {{ ({s:?}); write }}}} for a literal brace"
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self::Pieces(pieces))
    }

    /// The rendered text; `None` when it is a single pointer with no value there.
    pub(crate) fn render(&self, data: &Value) -> Option<String> {
        match self {
            Self::Pointer(p) => data.pointer(p).and_then(scalar_text),
            Self::Pieces(pieces) => {
                let mut out = String::new();
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Pointer(p) => {
                            if let Some(v) = data.pointer(p).and_then(scalar_text) {
                                out.push_str(&v);
                            }
                        }
                    }
                }
                Some(out)
            }
        }
    }
}

/// A value as one piece of text: strings as they are, numbers and booleans written out,
/// lists of such joined by commas, anything else as compact JSON. `null` has no text.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(items) if items.iter().all(|i| !i.is_array() && !i.is_object()) => Some(
            items
                .iter()
                .filter_map(scalar_text)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Array(_) | Value::Object(_) => Some(value.to_string()),
    }
}

/// Appends `key: value` lines for a value, flattening objects into dotted keys. Fields
/// named `_ab_*` are Airbyte's bookkeeping, not content, and are left out.
pub(crate) fn push_lines(out: &mut String, key: &str, value: &Value) {
    match value {
        Value::Null => {}
        Value::Object(fields) => {
            for (k, v) in fields {
                if k.starts_with("_ab_") {
                    continue;
                }
                let key = if key.is_empty() {
                    k.clone()
                } else {
                    format!("{key}.{k}")
                };
                push_lines(out, &key, v);
            }
        }
        other => {
            if let Some(text) = scalar_text(other) {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(key);
                out.push_str(": ");
                out.push_str(&text);
            }
        }
    }
}

/// The name a pointer gives a field: its segments unescaped and joined by dots.
pub(crate) fn pointer_key(pointer: &str) -> String {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The pointer of an Airbyte field path such as `["address", "city"]`.
pub(crate) fn path_pointer(path: &[String]) -> String {
    path.iter()
        .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_and_templates() {
        let data = json!({ "name": "Ada", "n": 3, "tags": ["a", "b"], "a/b": { "c~d": true } });
        let render = |s: &str| Template::parse(s).unwrap().render(&data);
        assert_eq!(render("/name"), Some("Ada".into()));
        assert_eq!(render("/missing"), None);
        assert_eq!(
            render("{/name} #{/n} {{{/tags}}}"),
            Some("Ada #3 {a, b}".into())
        );
        assert_eq!(render("x{/missing}y"), Some("xy".into()));
        assert_eq!(render("/a~1b/c~0d"), Some("true".into()));
        assert!(Template::parse("{/name").is_err());
        assert!(Template::parse("{name}").is_err());
        assert!(Template::parse("a } b").is_err());
    }

    #[test]
    fn lines_flatten_objects_and_skip_nulls_and_bookkeeping() {
        let mut out = String::new();
        push_lines(
            &mut out,
            "",
            &json!({ "id": 1, "address": { "city": "Oslo", "zip": null }, "_ab_cdc_lsn": 9, "tags": [1, 2] }),
        );
        // Sorted: the field order depends on serde_json's `preserve_order` feature.
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["address.city: Oslo", "id: 1", "tags: 1, 2"]);
    }

    #[test]
    fn pointer_names() {
        assert_eq!(pointer_key("/address/city"), "address.city");
        assert_eq!(pointer_key("/a~1b"), "a/b");
        assert_eq!(path_pointer(&["a/b".into(), "c".into()]), "/a~1b/c");
    }
}
