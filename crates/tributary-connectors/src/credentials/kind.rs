//! Credential kinds: one JSON Schema per kind, the secret fields it marks, validation
//! whose errors cannot leak a secret, and the split into config and secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};

/// `(kind name, schema text)`, one entry per file in `schemas/credentials/`.
const BUILTIN: &[(&str, &str)] = &[
    (
        "github_token",
        include_str!("../../../../schemas/credentials/github_token.json"),
    ),
    (
        "slack_bot_token",
        include_str!("../../../../schemas/credentials/slack_bot_token.json"),
    ),
    (
        "notion_token",
        include_str!("../../../../schemas/credentials/notion_token.json"),
    ),
    (
        "atlassian_api_token",
        include_str!("../../../../schemas/credentials/atlassian_api_token.json"),
    ),
    (
        "google_service_account",
        include_str!("../../../../schemas/credentials/google_service_account.json"),
    ),
    (
        "basic_auth",
        include_str!("../../../../schemas/credentials/basic_auth.json"),
    ),
    (
        "bearer_token",
        include_str!("../../../../schemas/credentials/bearer_token.json"),
    ),
    (
        "oauth2",
        include_str!("../../../../schemas/credentials/oauth2.json"),
    ),
];

/// One kind of credential (a GitHub token, a Google service account, ...): its schema,
/// which fields are secret, and how to validate a value of it.
pub struct CredentialKind {
    /// The kind's stable name, e.g. `github_token`; the schema's file stem.
    pub name: &'static str,
    /// A human title for a UI, from the schema's `title`.
    pub title: String,
    /// A human description for a UI, from the schema's `description`.
    pub description: String,
    /// The JSON Schema (draft 2020-12) of a full value: secret and non-secret fields.
    pub schema: Value,
    secret_fields: Vec<String>,
    validator: Validator,
}

impl fmt::Debug for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialKind")
            .field("name", &self.name)
            .field("title", &self.title)
            .field("secret_fields", &self.secret_fields)
            .finish_non_exhaustive()
    }
}

/// One problem with a credential value. Never contains the value itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the field, e.g. `/token`; `""` for the whole value.
    pub pointer: String,
    /// What is wrong and what is expected, e.g. `is required`.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "/"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

impl CredentialKind {
    /// Builds a kind from its schema text. Panics on a broken schema: the builtin schemas
    /// are compiled into the binary, so a broken one is a bug that the tests catch.
    fn from_schema_text(name: &'static str, text: &str) -> Self {
        let schema: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("credential schema {name} is not JSON: {e}"));
        // Formats (uri, email, date-time) are checked, not just annotations.
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("credential schema {name} does not compile: {e}"));
        let text_of = |key: &str| {
            schema
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("credential schema {name} has no {key}"))
                .to_owned()
        };
        let title = text_of("title");
        let description = text_of("description");
        let secret_fields = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .filter(|(_, prop)| prop.get("writeOnly") == Some(&Value::Bool(true)))
                    .map(|(field, _)| field.clone())
                    .collect()
            })
            .unwrap_or_default();
        Self {
            name,
            title,
            description,
            schema,
            secret_fields,
            validator,
        }
    }

    /// The fields whose values are secret (marked `"writeOnly": true` in the schema): they
    /// are stored encrypted and never shown again.
    pub fn secret_fields(&self) -> &[String] {
        &self.secret_fields
    }

    /// Whether `field` is one of the secret fields.
    pub fn is_secret(&self, field: &str) -> bool {
        self.secret_fields.iter().any(|f| f == field)
    }

    /// Validates a full value (secret and non-secret fields merged) against the schema.
    /// The errors list every problem with its JSON pointer, so a form can mark all of them
    /// at once. Messages are written here from the kind of violation, never from
    /// jsonschema's own text, which quotes the offending value and could leak a secret.
    pub fn validate(&self, value: &Value) -> Result<(), Vec<FieldError>> {
        let errors: Vec<FieldError> = self
            .validator
            .iter_errors(value)
            .flat_map(|e| field_errors(&e))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Splits a value into its non-secret config and its secret fields. Validate the value
    /// first: a secret field that is not a string is kept as its JSON text, and a `null`
    /// secret is dropped, so that no secret can end up in the config.
    pub fn split(
        &self,
        value: Map<String, Value>,
    ) -> (Map<String, Value>, BTreeMap<String, String>) {
        let mut config = Map::new();
        let mut secrets = BTreeMap::new();
        for (field, v) in value {
            if !self.is_secret(&field) {
                config.insert(field, v);
                continue;
            }
            match v {
                Value::Null => {}
                Value::String(s) => {
                    secrets.insert(field, s);
                }
                other => {
                    secrets.insert(field, other.to_string());
                }
            }
        }
        (config, secrets)
    }

    /// The schema's `default` for a top-level string field, e.g. GitHub's API base URL.
    pub(crate) fn default_str(&self, field: &str) -> Option<&str> {
        self.schema
            .get("properties")?
            .get(field)?
            .get("default")?
            .as_str()
    }
}

/// The registry of credential kinds.
#[derive(Debug)]
pub struct Kinds {
    kinds: Vec<CredentialKind>,
}

static BUILTIN_KINDS: LazyLock<Kinds> = LazyLock::new(|| Kinds {
    kinds: BUILTIN
        .iter()
        .map(|(name, text)| CredentialKind::from_schema_text(name, text))
        .collect(),
});

impl Kinds {
    /// The kinds shipped with Tributary, with schemas from `schemas/credentials/`.
    pub fn builtin() -> &'static Kinds {
        &BUILTIN_KINDS
    }

    /// The kind called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&CredentialKind> {
        self.kinds.iter().find(|k| k.name == name)
    }

    /// Every kind, in a stable order.
    pub fn all(&self) -> impl Iterator<Item = &CredentialKind> {
        self.kinds.iter()
    }
}

fn join_pointer(parent: &str, field: &str) -> String {
    let escaped = field.replace('~', "~0").replace('/', "~1");
    format!("{parent}/{escaped}")
}

/// Turns one jsonschema error into field errors. Only the schema side of the error (the
/// keyword, its limit, the names of fields) is used; the instance is never read.
fn field_errors(e: &ValidationError<'_>) -> Vec<FieldError> {
    let at = e.instance_path.as_str();
    let one = |message: String| {
        vec![FieldError {
            pointer: at.to_owned(),
            message,
        }]
    };
    match &e.kind {
        ValidationErrorKind::Required { property } => {
            let field = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            vec![FieldError {
                pointer: join_pointer(at, &field),
                message: "is required".to_owned(),
            }]
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected
            .iter()
            .map(|field| FieldError {
                pointer: join_pointer(at, field),
                message: "is not a field of this credential kind".to_owned(),
            })
            .collect(),
        ValidationErrorKind::Type { kind } => one(format!("must be {}", expected_type(kind))),
        ValidationErrorKind::Pattern { pattern } => one(format!(
            "does not have the expected form (must match {pattern})"
        )),
        ValidationErrorKind::Format { format } => one(format!("must be a valid {format}")),
        ValidationErrorKind::MinLength { limit: 1 } => one("must not be empty".to_owned()),
        ValidationErrorKind::MinLength { limit } => {
            one(format!("must be at least {limit} characters long"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            one(format!("must be at most {limit} characters long"))
        }
        ValidationErrorKind::Constant { expected_value } => {
            one(format!("must be {expected_value}"))
        }
        ValidationErrorKind::Enum { options } => one(format!("must be one of {options}")),
        ValidationErrorKind::MinItems { limit } => one(format!("must have at least {limit} items")),
        ValidationErrorKind::MaxItems { limit } => one(format!("must have at most {limit} items")),
        ValidationErrorKind::UniqueItems => one("must not contain duplicates".to_owned()),
        ValidationErrorKind::Minimum { limit } => one(format!("must be at least {limit}")),
        ValidationErrorKind::Maximum { limit } => one(format!("must be at most {limit}")),
        ValidationErrorKind::ExclusiveMinimum { limit } => {
            one(format!("must be greater than {limit}"))
        }
        ValidationErrorKind::ExclusiveMaximum { limit } => {
            one(format!("must be less than {limit}"))
        }
        ValidationErrorKind::FalseSchema => one("is not allowed".to_owned()),
        ValidationErrorKind::AnyOf | ValidationErrorKind::OneOfNotValid => {
            one("does not match any of the allowed forms".to_owned())
        }
        ValidationErrorKind::OneOfMultipleValid => {
            one("matches more than one of the allowed forms".to_owned())
        }
        _ => one("is invalid".to_owned()),
    }
}

fn expected_type(kind: &TypeKind) -> String {
    let with_article = |t: jsonschema::JsonType| {
        let name = t.to_string();
        let article = if matches!(
            t,
            jsonschema::JsonType::Array | jsonschema::JsonType::Object
        ) || name.starts_with(['a', 'e', 'i', 'o', 'u'])
        {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    };
    match kind {
        TypeKind::Single(t) => with_article(*t),
        TypeKind::Multiple(set) => set
            .iter()
            .map(with_article)
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointers_escape_slash_and_tilde() {
        assert_eq!(join_pointer("", "a/b~c"), "/a~1b~0c");
        assert_eq!(join_pointer("/x", "y"), "/x/y");
    }

    #[test]
    fn defaults_come_from_the_schema() {
        let github = Kinds::builtin().get("github_token").unwrap();
        assert_eq!(
            github.default_str("base_url"),
            Some("https://api.github.com")
        );
        assert_eq!(github.default_str("token"), None);
    }

    #[test]
    fn split_never_puts_a_secret_in_config_whatever_its_type() {
        let github = Kinds::builtin().get("github_token").unwrap();
        let Value::Object(value) = json!({"token": 42, "base_url": "https://x"}) else {
            unreachable!()
        };
        let (config, secrets) = github.split(value);
        assert!(!config.contains_key("token"));
        assert_eq!(secrets["token"], "42");
    }
}
