//! Checks that hold for every destination kind.

use serde_json::{Value, json};

use crate::{BuildContext, Destinations};

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap()
}

fn context(config: Value, credential: Option<Value>) -> BuildContext {
    BuildContext {
        config,
        credential,
        http: reqwest::Client::new(),
        data_dir: std::env::temp_dir().join("tributary-destinations-unused"),
    }
}

#[test]
fn builtin_kinds_have_unique_names_and_include_discard() {
    let kinds = Destinations::builtin();
    let names: Vec<&str> = kinds.iter().map(|k| k.name).collect();
    assert_eq!(names, ["csv", "webhook", "r2r", "onyx", "discard"]);
    assert!(kinds.get("discard").is_some());
    assert!(kinds.get("nope").is_none());
}

#[test]
fn every_schema_compiles_and_its_examples_validate_parse_and_build() {
    for kind in Destinations::builtin().iter() {
        let schema = &kind.schema;
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{}",
            kind.name
        );
        assert_eq!(
            schema["$id"],
            format!(
                "https://tributary.dev/schemas/destinations/{}.json",
                kind.name
            )
        );
        assert_eq!(schema["additionalProperties"], false, "{}", kind.name);
        assert!(schema["title"].is_string() && schema["description"].is_string());
        for (name, property) in schema["properties"].as_object().unwrap() {
            assert!(
                property["title"].is_string() && property["description"].is_string(),
                "{}.{name} needs a title and a description",
                kind.name
            );
        }

        let validator = validator(schema);
        let examples = schema["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "{} has no examples", kind.name);
        let credential = (!kind.credential_kinds.is_empty()).then(|| json!({ "token": "t" }));
        for example in examples {
            assert!(validator.is_valid(example), "{}: {example}", kind.name);
            kind.validate_config(example)
                .unwrap_or_else(|e| panic!("{}: {example}: {e}", kind.name));
            assert!(
                kind.build(context(example.clone(), credential.clone()))
                    .is_ok(),
                "{}: {example}",
                kind.name
            );
        }

        let mut unknown = examples[0].clone();
        unknown["surprise"] = json!(true);
        assert!(!validator.is_valid(&unknown), "{}", kind.name);
        assert!(kind.validate_config(&unknown).is_err(), "{}", kind.name);
    }
}

#[test]
fn schema_defaults_match_the_typed_defaults() {
    // A default documented in the schema but different in code would mislead users.
    let kinds = Destinations::builtin();
    let cases = [
        ("webhook", json!({ "url": "https://x.example" })),
        ("r2r", json!({ "base_url": "https://x.example" })),
        ("onyx", json!({ "base_url": "https://x.example/api" })),
    ];
    for (name, minimal) in cases {
        let kind = kinds.get(name).unwrap();
        let full = match name {
            "webhook" => serde_json::to_value(
                serde_json::from_value::<crate::webhook::WebhookConfig>(minimal).unwrap(),
            ),
            "r2r" => serde_json::to_value(
                serde_json::from_value::<crate::r2r::R2rConfig>(minimal).unwrap(),
            ),
            _ => serde_json::to_value(
                serde_json::from_value::<crate::onyx::OnyxConfig>(minimal).unwrap(),
            ),
        }
        .unwrap();
        for (field, property) in kind.schema["properties"].as_object().unwrap() {
            if let Some(default) = property.get("default") {
                assert_eq!(&full[field], default, "{name}.{field}");
            }
        }
        assert!(validator(&kind.schema).is_valid(&full), "{name}: {full}");
    }
}

#[test]
fn schemas_refuse_what_the_code_would_refuse() {
    let kinds = Destinations::builtin();
    let invalid = [
        ("csv", json!({ "path": "../outside.csv" })),
        ("csv", json!({ "path": "" })),
        ("webhook", json!({ "url": "ftp://x.example" })),
        (
            "r2r",
            json!({ "base_url": "https://x.example", "auth": "both" }),
        ),
        (
            "r2r",
            json!({ "base_url": "https://x.example", "collection_ids": ["nope"] }),
        ),
        (
            "r2r",
            json!({ "base_url": "https://x.example", "concurrency": 0 }),
        ),
        (
            "onyx",
            json!({ "base_url": "https://x.example", "cc_pair_id": "1" }),
        ),
    ];
    for (name, config) in invalid {
        let kind = kinds.get(name).unwrap();
        assert!(
            !validator(&kind.schema).is_valid(&config),
            "{name}: {config}"
        );
    }
}

#[test]
fn onyx_says_it_does_not_apply_access_lists() {
    let kinds = Destinations::builtin();
    let onyx = kinds.get("onyx").unwrap();
    assert!(!onyx.capabilities.permissions);
    assert!(onyx.warnings.iter().any(|w| w.contains("access")));
    assert!(kinds.iter().all(|k| !k.capabilities.permissions));
}

#[test]
fn http_kinds_without_a_usable_credential_fail_to_build_with_a_permanent_error() {
    let kinds = Destinations::builtin();
    let webhook = kinds.get("webhook").unwrap();
    let Err(error) = webhook.build(context(json!({ "url": "https://x.example" }), None)) else {
        panic!("a webhook without a secret must not build");
    };
    assert!(!error.is_retriable());
    assert!(error.message.contains("bearer_token"));

    let r2r = kinds.get("r2r").unwrap();
    let config = json!({ "base_url": "https://x.example" });
    let Err(error) = r2r.build(context(config, Some(json!({ "username": "u" })))) else {
        panic!("an r2r credential without a token must not build");
    };
    assert!(!error.is_retriable());
}
