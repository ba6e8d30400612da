//! The bundled config schemas of the synthetic, filesystem and web sources agree with
//! their typed configs: examples validate and parse, defaults match, and every field is
//! titled and described for a UI.

use serde_json::{Map, Value, json};
use tributary_connectors::source::Connectors;
use tributary_connectors::source::filesystem::FilesystemConfig;
use tributary_connectors::source::synthetic::SyntheticConfig;
use tributary_connectors::source::web::WebConfig;

const KINDS: [&str; 3] = ["synthetic", "filesystem", "web"];

fn schema(kind: &str) -> Value {
    Connectors::builtin()
        .get(kind)
        .unwrap_or_else(|| panic!("{kind} is registered"))
        .schema
        .clone()
}

/// The smallest valid config, and the same config through the typed struct, serialized
/// with every default filled in.
fn minimal_and_typed(kind: &str) -> (Value, Value) {
    let minimal = match kind {
        "synthetic" => json!({ "count": 10 }),
        "filesystem" => json!({ "root": "/srv/docs" }),
        "web" => json!({ "start_url": "https://docs.example.com/" }),
        other => panic!("no minimal config for {other}"),
    };
    let typed = match kind {
        "synthetic" => serde_json::to_value(
            serde_json::from_value::<SyntheticConfig>(minimal.clone()).unwrap(),
        ),
        "filesystem" => serde_json::to_value(
            serde_json::from_value::<FilesystemConfig>(minimal.clone()).unwrap(),
        ),
        _ => serde_json::to_value(serde_json::from_value::<WebConfig>(minimal.clone()).unwrap()),
    }
    .unwrap();
    (minimal, typed)
}

fn parses(kind: &str, value: &Value) -> bool {
    match kind {
        "synthetic" => serde_json::from_value::<SyntheticConfig>(value.clone()).is_ok(),
        "filesystem" => serde_json::from_value::<FilesystemConfig>(value.clone()).is_ok(),
        _ => serde_json::from_value::<WebConfig>(value.clone()).is_ok(),
    }
}

fn properties(schema: &Value) -> &Map<String, Value> {
    schema["properties"].as_object().unwrap()
}

#[test]
fn schemas_are_closed_draft_2020_12_with_titled_fields() {
    for kind in KINDS {
        let schema = schema(kind);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind}"
        );
        assert_eq!(schema["additionalProperties"], false, "{kind}");
        assert!(jsonschema::draft202012::meta::is_valid(&schema), "{kind}");
        for (name, property) in properties(&schema) {
            assert!(property["title"].is_string(), "{kind}.{name} has no title");
            assert!(
                property["description"].is_string(),
                "{kind}.{name} has no description"
            );
            assert!(
                property["examples"].is_array(),
                "{kind}.{name} has no examples"
            );
        }
    }
}

#[test]
fn examples_validate_and_parse_and_property_examples_are_valid() {
    for kind in KINDS {
        let schema = schema(kind);
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let examples = schema["examples"].as_array().unwrap();
        assert!(!examples.is_empty(), "{kind}");
        for example in examples {
            assert!(validator.is_valid(example), "{kind}: {example}");
            assert!(parses(kind, example), "{kind}: {example}");
        }
        let (minimal, _) = minimal_and_typed(kind);
        for (name, property) in properties(&schema) {
            for value in property["examples"].as_array().unwrap() {
                let mut config = minimal.clone();
                config[name] = value.clone();
                assert!(validator.is_valid(&config), "{kind}.{name} example {value}");
                assert!(parses(kind, &config), "{kind}.{name} example {value}");
            }
        }
        let mut unknown = minimal.clone();
        unknown["surprise"] = json!(1);
        assert!(!validator.is_valid(&unknown), "{kind}");
        assert!(!parses(kind, &unknown), "{kind}");
    }
}

#[test]
fn schema_defaults_are_the_typed_defaults() {
    for kind in KINDS {
        let schema = schema(kind);
        let (_, typed) = minimal_and_typed(kind);
        for (name, property) in properties(&schema) {
            if let Some(default) = property.get("default") {
                assert_eq!(&typed[name], default, "{kind}.{name}");
            }
        }
    }
}
