//! The airbyte source's config: which Airbyte source to run and with what config, which
//! streams to sync, and how a record becomes a document. Its schema is
//! `schemas/connectors/airbyte.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::template::Template;
use crate::source::{Result, SourceError};

/// The config of one airbyte profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AirbyteConfig {
    /// The Airbyte source to run.
    pub command: Command,
    /// The source's own config, without secrets: those come from the credential.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub config: Map<String, Value>,
    /// The streams to sync; `None` syncs every stream the source discovers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streams: Option<Vec<StreamConfig>>,
    /// How the records of each stream (by name) become documents; streams without an
    /// entry use the defaults of [`StreamMapping`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mapping: BTreeMap<String, StreamMapping>,
    /// Where each credential field goes in the source config (credential field name →
    /// JSON pointer), for sources that nest their secrets. Without it the credential's
    /// fields are merged into the top level of `config`, overriding fields of the same
    /// name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_fields: Option<BTreeMap<String, String>>,
    /// How long `spec`, `check` and `discover` may take. `read` has no limit.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// The most records in one batch when the source sends no STATE in between.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Extra environment variables for the source process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

const fn default_timeout_secs() -> u64 {
    120
}

const fn default_batch_size() -> usize {
    1000
}

/// The executable of an Airbyte source: a path (run without arguments), or an argv whose
/// first element is the executable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Program(String),
    Argv(Vec<String>),
}

impl Command {
    /// The executable and the arguments that come before the Airbyte command.
    pub fn split(&self) -> Option<(&str, &[String])> {
        match self {
            Self::Program(p) => Some((p.as_str(), &[])),
            Self::Argv(argv) => argv.split_first().map(|(p, rest)| (p.as_str(), rest)),
        }
    }
}

/// One stream to sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Defaults to incremental when the stream supports it, else full refresh.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_mode: Option<SyncMode>,
    /// The cursor's path in the record, for incremental streams whose source does not
    /// define one; defaults to the stream's default cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_field: Option<Vec<String>>,
    /// The primary key's paths, when the source defines none; the default document id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_key: Option<Vec<Vec<String>>>,
}

/// An Airbyte sync mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    Incremental,
    FullRefresh,
}

impl SyncMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::FullRefresh => "full_refresh",
        }
    }
}

/// How a record of one stream becomes a document. Pointers are JSON pointers (RFC 6901)
/// into the record's `data`; templates are text with `{/pointer}` placeholders (`{{` and
/// `}}` for literal braces).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamMapping {
    /// The pointer(s) of the record's id, joined and prefixed with the stream name so that
    /// ids are unique across streams. Defaults to the stream's primary key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Pointers>,
    /// A pointer or a template. Defaults to the record's `title` or `name` field, else
    /// the stream name and id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A pointer or template for the whole text, or a list of pointers rendered as
    /// `key: value` lines. Defaults to every field as `key: value` lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextMapping>,
    /// A pointer or template for the document's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Defaults to the stream's cursor field when it holds a date-time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// Pointers whose values become metadata, named after the pointer (`/a/b` → `a.b`)
    /// or as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<MetadataMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Pointers {
    One(String),
    Many(Vec<String>),
}

impl Pointers {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(p) => std::slice::from_ref(p),
            Self::Many(ps) => ps,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TextMapping {
    Template(String),
    Fields(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MetadataMapping {
    Fields(Vec<String>),
    Named(BTreeMap<String, String>),
}

impl AirbyteConfig {
    /// A config that runs `command` on every stream with the default mapping.
    pub fn new(command: Command) -> Self {
        Self {
            command,
            config: Map::new(),
            streams: None,
            mapping: BTreeMap::new(),
            credential_fields: None,
            timeout_secs: default_timeout_secs(),
            batch_size: default_batch_size(),
            env: BTreeMap::new(),
        }
    }

    /// Parses and checks a profile's config: what the schema cannot say (pointer and
    /// template syntax) is checked here.
    pub fn from_value(value: Value) -> Result<Self> {
        let config: Self = serde_json::from_value(value).map_err(|e| SourceError::Config {
            message: format!("the airbyte config does not have the expected shape ({e}); compare it with schemas/connectors/airbyte.json"),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        match self.command.split() {
            Some((program, _)) if !program.is_empty() => {}
            _ => {
                return Err(config_error(
                    "`command` is empty; set it to the path of the Airbyte source's executable, e.g. /var/tmp/tributary-airbyte/faker/bin/source-faker",
                ));
            }
        }
        if self.timeout_secs == 0 || self.batch_size == 0 {
            return Err(config_error(
                "`timeout_secs` and `batch_size` must be at least 1",
            ));
        }
        for (field, pointer) in self.credential_fields.iter().flatten() {
            check_pointer(&format!("credential_fields.{field}"), pointer)?;
        }
        for (stream, m) in &self.mapping {
            let at = |field: &str| format!("mapping.{stream}.{field}");
            for p in m.id.iter().flat_map(Pointers::as_slice) {
                check_pointer(&at("id"), p)?;
            }
            if matches!(&m.id, Some(Pointers::Many(ps)) if ps.is_empty()) {
                return Err(config_error(&format!(
                    "`{}` is an empty list; give at least one pointer",
                    at("id")
                )));
            }
            for (field, value) in [("title", &m.title), ("link", &m.link)] {
                if let Some(t) = value {
                    Template::parse(t)
                        .map_err(|e| config_error(&format!("`{}` {e}", at(field))))?;
                }
            }
            match &m.text {
                Some(TextMapping::Template(t)) => {
                    Template::parse(t)
                        .map_err(|e| config_error(&format!("`{}` {e}", at("text"))))?;
                }
                Some(TextMapping::Fields(ps)) => {
                    for p in ps {
                        check_pointer(&at("text"), p)?;
                    }
                }
                None => {}
            }
            for (field, value) in [("updated_at", &m.updated_at), ("created_at", &m.created_at)] {
                if let Some(p) = value {
                    check_pointer(&at(field), p)?;
                }
            }
            match &m.metadata {
                Some(MetadataMapping::Fields(ps)) => {
                    for p in ps {
                        check_pointer(&at("metadata"), p)?;
                    }
                }
                Some(MetadataMapping::Named(named)) => {
                    for p in named.values() {
                        check_pointer(&at("metadata"), p)?;
                    }
                }
                None => {}
            }
        }
        Ok(())
    }
}

fn config_error(message: &str) -> SourceError {
    SourceError::Config {
        message: message.to_owned(),
    }
}

/// A JSON pointer must start with `/` and use `~` only in `~0` and `~1`.
pub(crate) fn check_pointer(at: &str, pointer: &str) -> Result<()> {
    let mut chars = pointer.chars();
    let mut ok = pointer.starts_with('/');
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            ok = false;
        }
    }
    if ok {
        Ok(())
    } else {
        Err(config_error(&format!(
            "`{at}` is not a JSON pointer ({pointer:?}); write it like /field/subfield, with ~1 for a / and ~0 for a ~ inside a name"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn example() -> Value {
        json!({
            "command": ["/var/tmp/tributary-airbyte/faker/bin/source-faker"],
            "config": { "count": 200, "seed": 42 },
            "streams": [{ "name": "users", "sync_mode": "incremental", "cursor_field": ["updated_at"] }],
            "mapping": {
                "users": {
                    "id": "/id",
                    "title": "{/name} ({/email})",
                    "text": ["/occupation", "/address/city"],
                    "updated_at": "/updated_at",
                    "metadata": { "nationality": "/nationality" }
                }
            },
            "timeout_secs": 60,
            "env": { "PYTHONUNBUFFERED": "1" }
        })
    }

    #[test]
    fn parses_an_example() {
        let config = AirbyteConfig::from_value(example()).unwrap();
        assert_eq!(
            config.command.split().unwrap().0,
            "/var/tmp/tributary-airbyte/faker/bin/source-faker"
        );
        assert_eq!(config.batch_size, 1000);
        assert_eq!(config.timeout_secs, 60);
        let users = &config.mapping["users"];
        assert_eq!(users.id, Some(Pointers::One("/id".into())));
        assert_eq!(
            users.text,
            Some(TextMapping::Fields(vec![
                "/occupation".into(),
                "/address/city".into()
            ]))
        );
        assert_eq!(
            config.streams.unwrap()[0].sync_mode,
            Some(SyncMode::Incremental)
        );
    }

    #[test]
    fn generates_an_example() {
        let mut config = AirbyteConfig::new(Command::Program("/opt/source-github".into()));
        config.mapping.insert(
            "issues".into(),
            StreamMapping {
                id: Some(Pointers::Many(vec!["/repository".into(), "/number".into()])),
                title: Some("/title".into()),
                ..StreamMapping::default()
            },
        );
        let value = serde_json::to_value(&config).unwrap();
        assert_eq!(
            value,
            json!({
                "command": "/opt/source-github",
                "mapping": { "issues": { "id": ["/repository", "/number"], "title": "/title" } },
                "timeout_secs": 120,
                "batch_size": 1000
            })
        );
        assert_eq!(AirbyteConfig::from_value(value).unwrap(), config);
    }

    #[test]
    fn rejects_unknown_fields_and_bad_pointers() {
        let mut value = example();
        value["colour"] = json!("blue");
        assert!(matches!(
            AirbyteConfig::from_value(value),
            Err(SourceError::Config { .. })
        ));
        let mut value = example();
        value["mapping"]["users"]["id"] = json!("id");
        let err = AirbyteConfig::from_value(value).unwrap_err().to_string();
        assert!(err.contains("mapping.users.id"), "{err}");
        let mut value = example();
        value["mapping"]["users"]["title"] = json!("{/name");
        let err = AirbyteConfig::from_value(value).unwrap_err().to_string();
        assert!(err.contains("mapping.users.title"), "{err}");
        assert!(AirbyteConfig::from_value(json!({ "command": [] })).is_err());
    }
}
