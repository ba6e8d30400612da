//! The credential kind schemas: samples pass, broken values fail with pointers, secret
//! fields are the `writeOnly` ones, and no validation error ever carries a secret.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};
use tributary_connectors::credentials::{CredentialKind, FieldError, Kinds};

const PEM_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";

/// A valid value of each kind, with every field it has.
fn sample(kind: &str) -> Value {
    match kind {
        "github_token" => json!({
            "token": "github_pat_11AAAAAAA0example",
            "base_url": "https://ghe.example.com/api/v3"
        }),
        "slack_bot_token" => json!({
            "token": "xoxb-1234-5678-abcdef",
            "base_url": "https://slack.com"
        }),
        "notion_token" => json!({
            "token": "ntn_1234567890example",
            "base_url": "https://api.notion.com"
        }),
        "atlassian_api_token" => json!({
            "site_url": "https://acme.atlassian.net",
            "email": "ops@acme.example",
            "api_token": "ATATT3xFfGF0example"
        }),
        "google_service_account" => json!({
            "type": "service_account",
            "project_id": "acme-search",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": PEM_KEY,
            "client_email": "indexer@acme-search.iam.gserviceaccount.com",
            "client_id": "123456789012345678901",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/indexer%40acme-search.iam.gserviceaccount.com",
            "universe_domain": "googleapis.com",
            "subject": "admin@acme.example"
        }),
        "basic_auth" => json!({
            "username": "crawler",
            "password": "correct horse battery staple",
            "base_url": "https://intranet.acme.example/wiki/"
        }),
        "bearer_token" => json!({
            "token": "eyJhbGciOiJIUzI1NiJ9.e30.example",
            "check_url": "https://api.acme.example/me"
        }),
        "oauth2" => json!({
            "provider": "google",
            "access_token": "ya29.a0Example",
            "refresh_token": "1//0example",
            "expires_at": "2030-01-01T00:00:00Z",
            "scopes": ["https://www.googleapis.com/auth/drive.readonly"],
            "token_type": "Bearer",
            "check_url": "https://openidconnect.googleapis.com/v1/userinfo"
        }),
        other => panic!("no sample for kind {other}"),
    }
}

fn kind(name: &str) -> &'static CredentialKind {
    Kinds::builtin()
        .get(name)
        .unwrap_or_else(|| panic!("kind {name} is not registered"))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn pointers(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.pointer.as_str()).collect()
}

fn properties(kind: &CredentialKind) -> &Map<String, Value> {
    kind.schema["properties"].as_object().unwrap()
}

fn required(kind: &CredentialKind) -> Vec<&str> {
    kind.schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

#[test]
fn every_schema_file_is_a_registered_kind() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schemas/credentials");
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect();
    let registered: BTreeSet<String> = Kinds::builtin().all().map(|k| k.name.to_owned()).collect();
    assert_eq!(files, registered);
    assert_eq!(registered.len(), 8);
}

#[test]
fn schemas_are_closed_2020_12_objects_described_for_a_ui() {
    for kind in Kinds::builtin().all() {
        let schema = &kind.schema;
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{}",
            kind.name
        );
        assert_eq!(schema["type"], "object", "{}", kind.name);
        assert_eq!(schema["additionalProperties"], false, "{}", kind.name);
        assert!(!kind.title.is_empty() && !kind.description.is_empty());
        for (field, prop) in properties(kind) {
            for key in ["title", "description"] {
                assert!(
                    prop[key].as_str().is_some_and(|s| !s.is_empty()),
                    "{}.{field} has no {key}",
                    kind.name
                );
            }
        }
        for field in required(kind) {
            assert!(
                properties(kind).contains_key(field),
                "{}.{field}",
                kind.name
            );
        }
    }
}

#[test]
fn samples_pass() {
    for kind in Kinds::builtin().all() {
        let value = sample(kind.name);
        assert_eq!(kind.validate(&value), Ok(()), "{}", kind.name);
        // The sample uses every field, so the test covers the whole schema.
        let sample_fields: BTreeSet<String> = object(value).keys().cloned().collect();
        let schema_fields: BTreeSet<String> = properties(kind).keys().cloned().collect();
        assert_eq!(sample_fields, schema_fields, "{}", kind.name);
    }
}

#[test]
fn minimal_values_pass() {
    for kind in Kinds::builtin().all() {
        let full = object(sample(kind.name));
        let minimal: Map<String, Value> = full
            .into_iter()
            .filter(|(f, _)| required(kind).contains(&f.as_str()))
            .collect();
        assert_eq!(
            kind.validate(&Value::Object(minimal)),
            Ok(()),
            "{}",
            kind.name
        );
    }
}

#[test]
fn secret_fields_are_the_write_only_ones() {
    let expected: &[(&str, &[&str])] = &[
        ("github_token", &["token"]),
        ("slack_bot_token", &["token"]),
        ("notion_token", &["token"]),
        ("atlassian_api_token", &["api_token"]),
        ("google_service_account", &["private_key"]),
        ("basic_auth", &["password"]),
        ("bearer_token", &["token"]),
        ("oauth2", &["access_token", "refresh_token"]),
    ];
    for (name, secrets) in expected {
        let kind = kind(name);
        assert_eq!(kind.secret_fields(), *secrets, "{name}");
        for field in properties(kind).keys() {
            assert_eq!(
                kind.is_secret(field),
                secrets.contains(&field.as_str()),
                "{name}.{field}"
            );
        }
    }
    assert!(!kind("google_service_account").is_secret("private_key_id"));
}

#[test]
fn missing_required_fields_fail_at_their_pointer() {
    for kind in Kinds::builtin().all() {
        for field in required(kind) {
            let mut value = object(sample(kind.name));
            value.remove(field);
            let errors = kind.validate(&Value::Object(value)).unwrap_err();
            let error = errors
                .iter()
                .find(|e| e.pointer == format!("/{field}"))
                .unwrap_or_else(|| panic!("{}.{field}: {errors:?}", kind.name));
            assert_eq!(error.message, "is required");
        }
    }
}

#[test]
fn wrong_types_fail_at_their_pointer() {
    for kind in Kinds::builtin().all() {
        for field in properties(kind).keys() {
            let mut value = object(sample(kind.name));
            value.insert(field.clone(), json!(12345));
            let errors = kind.validate(&Value::Object(value)).unwrap_err();
            assert_eq!(pointers(&errors), [format!("/{field}")], "{}", kind.name);
        }
    }
    let errors = kind("oauth2")
        .validate(&json!({"provider": "x", "access_token": "t", "scopes": [1]}))
        .unwrap_err();
    assert_eq!(pointers(&errors), ["/scopes/0"]);
    assert_eq!(errors[0].message, "must be a string");
}

#[test]
fn additional_properties_fail_at_their_pointer() {
    for kind in Kinds::builtin().all() {
        let mut value = object(sample(kind.name));
        value.insert("surplus".to_owned(), json!("x"));
        value.insert("a/b".to_owned(), json!("x"));
        let errors = kind.validate(&Value::Object(value)).unwrap_err();
        let mut found = pointers(&errors);
        found.sort_unstable();
        assert_eq!(found, ["/a~1b", "/surplus"], "{}", kind.name);
    }
}

#[test]
fn a_value_that_is_not_an_object_fails_at_the_root() {
    let errors = kind("github_token")
        .validate(&json!(["token"]))
        .unwrap_err();
    assert_eq!(pointers(&errors), [""]);
    assert_eq!(errors[0].message, "must be an object");
}

#[test]
fn kind_specific_rules() {
    let cases: &[(&str, Value, &str)] = &[
        (
            "slack_bot_token",
            json!({"token": "xoxa-2-legacy"}),
            "/token",
        ),
        (
            "atlassian_api_token",
            json!({"site_url": "https://acme.example.com", "email": "a@b.co", "api_token": "t"}),
            "/site_url",
        ),
        (
            "atlassian_api_token",
            json!({"site_url": "https://acme.atlassian.net", "email": "nobody", "api_token": "t"}),
            "/email",
        ),
        (
            "google_service_account",
            json!({"client_email": "a@b.co", "private_key": "MIIEvQ"}),
            "/private_key",
        ),
        (
            "google_service_account",
            json!({"client_email": "a@b.co", "private_key": PEM_KEY, "type": "user"}),
            "/type",
        ),
        (
            "oauth2",
            json!({"provider": "google", "access_token": "t", "expires_at": "tomorrow"}),
            "/expires_at",
        ),
        (
            "oauth2",
            json!({"provider": "google", "access_token": "t", "token_type": "MAC"}),
            "/token_type",
        ),
        (
            "github_token",
            json!({"token": "t", "base_url": "ftp://ghe.example.com"}),
            "/base_url",
        ),
        (
            "basic_auth",
            json!({"username": "", "password": "p"}),
            "/username",
        ),
    ];
    for (name, value, pointer) in cases {
        let errors = kind(name).validate(value).unwrap_err();
        assert_eq!(pointers(&errors), [*pointer], "{name}: {errors:?}");
    }
}

#[test]
fn split_separates_secrets_from_config() {
    for kind in Kinds::builtin().all() {
        let value = object(sample(kind.name));
        let (config, secrets) = kind.split(value.clone());
        let secret_names: Vec<&String> = secrets.keys().collect();
        let mut expected: Vec<&String> = kind.secret_fields().iter().collect();
        expected.sort();
        assert_eq!(secret_names, expected, "{}", kind.name);
        for (field, secret) in &secrets {
            assert_eq!(value[field].as_str(), Some(secret.as_str()));
            assert!(!config.contains_key(field));
        }
        assert_eq!(config.len() + secrets.len(), value.len());
    }
}

/// jsonschema's own messages quote the offending value; ours never do. The control
/// assertion proves that the leak this test guards against is real.
#[test]
fn validation_errors_never_contain_a_secret() {
    const SECRET: &str = "SuperSecretValue-9f8e7d6c";
    for kind in Kinds::builtin().all() {
        for field in kind.secret_fields() {
            let candidates = [
                json!(format!("{SECRET} {SECRET}")),
                json!(SECRET.repeat(2000)),
                json!(format!("\n{SECRET}")),
                json!([SECRET]),
                json!({ "nested": SECRET }),
            ];
            let mut failed_at_field = 0;
            for bad in candidates {
                let mut value = object(sample(kind.name));
                value.insert(field.clone(), bad.clone());
                // The secret also hides in a misspelt field, where it is no secret to
                // the schema.
                value.insert(format!("{field}_typo"), json!(SECRET));
                let value = Value::Object(value);
                let errors = kind.validate(&value).unwrap_err();
                for e in &errors {
                    assert!(
                        !e.message.contains(SECRET) && !e.pointer.contains(SECRET),
                        "{}.{field} leaks: {e:?}",
                        kind.name
                    );
                }
                let serialized = serde_json::to_string(&errors).unwrap();
                assert!(!serialized.contains(SECRET));
                if errors.iter().any(|e| e.pointer == format!("/{field}")) {
                    failed_at_field += 1;
                    let raw = jsonschema::validator_for(&kind.schema).unwrap();
                    let raw_text: String = raw.iter_errors(&value).map(|e| e.to_string()).collect();
                    assert!(raw_text.contains(SECRET), "control: {raw_text}");
                }
            }
            assert!(failed_at_field >= 3, "{}.{field}", kind.name);
        }
    }
}
