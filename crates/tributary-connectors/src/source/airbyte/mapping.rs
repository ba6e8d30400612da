//! How a RECORD of one stream becomes a document, per the stream's [`StreamMapping`].
//!
//! Ids are `<stream>/<key>`: the stream name (after its namespace, `<namespace>/<stream>`,
//! when it has one) and the key's value. A key of several parts joins them with `/`,
//! each part with `%` and `/` percent-escaped so that different keys never give the same
//! id. A record that cannot be mapped is a per-document failure, never an error.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::Value;
use tributary_domain::document::{Document, MetadataValue};

use super::catalog::Selected;
use super::config::{MetadataMapping, StreamMapping, TextMapping};
use super::template::{Template, path_pointer, pointer_key, push_lines, scalar_text};
use crate::source::{Result, SourceError};

/// Airbyte's CDC sources mark a deleted row with this field.
const CDC_DELETED_AT: &str = "_ab_cdc_deleted_at";

#[derive(Debug, Clone)]
pub(crate) struct Mapper {
    stream: String,
    prefix: String,
    id: Vec<String>,
    title: Option<Template>,
    text: Text,
    link: Option<Template>,
    updated_at: Option<DatePointer>,
    created_at: Option<DatePointer>,
    metadata: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
enum Text {
    AllFields,
    Template(Template),
    Fields(Vec<String>),
}

/// Where a date is. A configured pointer must hold a date when it holds anything; the
/// default one (the cursor) is used only when it happens to.
#[derive(Debug, Clone)]
struct DatePointer {
    pointer: String,
    strict: bool,
}

/// What one record became.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mapped {
    Document(Box<Document>),
    /// A CDC deletion of the document with this id.
    Deleted(String),
}

/// Why a record could not be mapped: the document's id when known, else the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MapFailure {
    pub(crate) id: String,
    pub(crate) message: String,
}

impl Mapper {
    pub(crate) fn new(stream: &Selected, mapping: Option<&StreamMapping>) -> Result<Self> {
        let default = StreamMapping::default();
        let m = mapping.unwrap_or(&default);
        let name = &stream.stream.name;
        let id = match &m.id {
            Some(p) => p.as_slice().to_vec(),
            None if !stream.primary_key.is_empty() => stream
                .primary_key
                .iter()
                .map(|path| path_pointer(path))
                .collect(),
            None => {
                return Err(SourceError::Config {
                    message: format!(
                        "stream {name} has no primary key, so its documents have no id; set `mapping.{name}.id` to the JSON pointer(s) of a field that identifies a record"
                    ),
                });
            }
        };
        let template = |s: &Option<String>| -> Result<Option<Template>> {
            s.as_deref()
                .map(Template::parse)
                .transpose()
                .map_err(|e| SourceError::Config {
                    message: format!("a mapping of stream {name} {e}"),
                })
        };
        let text = match &m.text {
            None => Text::AllFields,
            Some(TextMapping::Fields(ps)) => Text::Fields(ps.clone()),
            Some(TextMapping::Template(t)) => {
                Text::Template(Template::parse(t).map_err(|e| SourceError::Config {
                    message: format!("`mapping.{name}.text` {e}"),
                })?)
            }
        };
        let strict = |p: &Option<String>| {
            p.as_ref().map(|p| DatePointer {
                pointer: p.clone(),
                strict: true,
            })
        };
        let updated_at = strict(&m.updated_at).or_else(|| {
            (!stream.cursor_field.is_empty()).then(|| DatePointer {
                pointer: path_pointer(&stream.cursor_field),
                strict: false,
            })
        });
        let metadata = match &m.metadata {
            None => Vec::new(),
            Some(MetadataMapping::Fields(ps)) => {
                ps.iter().map(|p| (pointer_key(p), p.clone())).collect()
            }
            Some(MetadataMapping::Named(named)) => {
                named.iter().map(|(k, p)| (k.clone(), p.clone())).collect()
            }
        };
        Ok(Self {
            stream: name.clone(),
            prefix: match &stream.stream.namespace {
                Some(ns) => format!("{ns}/{name}"),
                None => name.clone(),
            },
            id,
            title: template(&m.title)?,
            text,
            link: template(&m.link)?,
            updated_at,
            created_at: strict(&m.created_at),
            metadata,
        })
    }

    /// The document id of a record.
    pub(crate) fn id(&self, data: &Value) -> Result<String, MapFailure> {
        let mut parts = Vec::with_capacity(self.id.len());
        for pointer in &self.id {
            let part = match data.pointer(pointer) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
                Some(Value::Null) | None => {
                    return Err(self.failure(
                        None,
                        format!("a record of stream {} has no value at {pointer}, which makes its id; fix `mapping.{}.id` or the source", self.stream, self.stream),
                    ));
                }
                Some(_) => {
                    return Err(self.failure(
                        None,
                        format!("a record of stream {} has an empty string, an object or a list at {pointer}, which makes its id; point `mapping.{}.id` at a string or a number", self.stream, self.stream),
                    ));
                }
            };
            parts.push(part);
        }
        let key = if let [one] = parts.as_slice() {
            one.clone()
        } else {
            parts
                .iter()
                .map(|p| p.replace('%', "%25").replace('/', "%2F"))
                .collect::<Vec<_>>()
                .join("/")
        };
        Ok(format!("{}/{key}", self.prefix))
    }

    pub(crate) fn is_deleted(data: &Value) -> bool {
        data.get(CDC_DELETED_AT).is_some_and(|v| !v.is_null())
    }

    pub(crate) fn map(&self, data: &Value) -> Result<Mapped, MapFailure> {
        let id = self.id(data)?;
        if Self::is_deleted(data) {
            return Ok(Mapped::Deleted(id));
        }
        if !data.is_object() {
            return Err(self.failure(
                Some(&id),
                format!("a record of stream {} is not a JSON object", self.stream),
            ));
        }
        let title = self
            .title
            .as_ref()
            .and_then(|t| t.render(data))
            .filter(|t| !t.is_empty())
            .or_else(|| {
                ["title", "name", "subject", "summary"]
                    .iter()
                    .find_map(|f| data.get(f).and_then(Value::as_str))
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| id.replacen('/', " ", 1));
        let text = match &self.text {
            Text::AllFields => {
                let mut out = String::new();
                push_lines(&mut out, "", data);
                out
            }
            Text::Template(t) => t.render(data).unwrap_or_default(),
            Text::Fields(ps) => {
                let mut out = String::new();
                for p in ps {
                    if let Some(v) = data.pointer(p) {
                        push_lines(&mut out, &pointer_key(p), v);
                    }
                }
                out
            }
        };
        let mut doc = Document::text("airbyte", id.clone(), title, text);
        if let Some(link) = self.link.as_ref().and_then(|l| l.render(data))
            && let Some(section) = doc.sections.first_mut()
        {
            section.link = Some(link);
        }
        doc.updated_at = self.date(&id, data, self.updated_at.as_ref())?;
        doc.created_at = self.date(&id, data, self.created_at.as_ref())?;
        doc.metadata.insert(
            "airbyte_stream".to_owned(),
            MetadataValue::One(self.stream.clone()),
        );
        for (key, pointer) in &self.metadata {
            let value = match data.pointer(pointer) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => {
                    MetadataValue::Many(items.iter().filter_map(scalar_text).collect())
                }
                Some(v) => match scalar_text(v) {
                    Some(t) => MetadataValue::One(t),
                    None => continue,
                },
            };
            doc.metadata.insert(key.clone(), value);
        }
        Ok(Mapped::Document(Box::new(doc)))
    }

    fn date(
        &self,
        id: &str,
        data: &Value,
        at: Option<&DatePointer>,
    ) -> Result<Option<DateTime<Utc>>, MapFailure> {
        let Some(at) = at else { return Ok(None) };
        match data.pointer(&at.pointer) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match parse_date(v) {
                Some(d) => Ok(Some(d)),
                None if !at.strict => Ok(None),
                None => Err(self.failure(
                    Some(id),
                    format!(
                        "the value at {} is not a date-time (RFC 3339, `YYYY-MM-DD HH:MM:SS`, a date or epoch seconds); point the mapping at a date field",
                        at.pointer
                    ),
                )),
            },
        }
    }

    fn failure(&self, id: Option<&str>, message: String) -> MapFailure {
        MapFailure {
            id: id.map_or_else(|| self.prefix.clone(), str::to_owned),
            message,
        }
    }
}

/// Dates as sources write them: RFC 3339, a naive date-time or date (taken as UTC), or
/// epoch seconds (milliseconds when the number is too large to be seconds).
pub(crate) fn parse_date(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => {
            let s = s.trim();
            if let Ok(d) = DateTime::parse_from_rfc3339(s) {
                return Some(d.with_timezone(&Utc));
            }
            if let Ok(d) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
                return Some(d.with_timezone(&Utc));
            }
            for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
                if let Ok(d) = NaiveDateTime::parse_from_str(s, format) {
                    return Some(Utc.from_utc_datetime(&d));
                }
            }
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| Utc.from_utc_datetime(&d))
        }
        Value::Number(n) => {
            let n = n.as_i64()?;
            // Seconds until the year 5138; larger numbers are milliseconds.
            if n.abs() < 100_000_000_000 {
                DateTime::from_timestamp(n, 0)
            } else {
                DateTime::from_timestamp_millis(n)
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::airbyte::config::{Pointers, SyncMode};
    use crate::source::airbyte::protocol::DiscoveredStream;
    use serde_json::json;

    fn selected(name: &str, pk: &[&str], cursor: &[&str]) -> Selected {
        Selected {
            stream: DiscoveredStream {
                name: name.into(),
                namespace: None,
                supported_sync_modes: vec![SyncMode::FullRefresh],
                source_defined_cursor: false,
                default_cursor_field: vec![],
                source_defined_primary_key: vec![],
                raw: json!({}),
            },
            sync_mode: SyncMode::FullRefresh,
            cursor_field: cursor.iter().map(|s| (*s).to_owned()).collect(),
            primary_key: pk.iter().map(|s| vec![(*s).to_owned()]).collect(),
        }
    }

    fn doc(m: Mapped) -> Document {
        match m {
            Mapped::Document(d) => *d,
            Mapped::Deleted(id) => panic!("deleted {id}"),
        }
    }

    #[test]
    fn defaults_use_the_primary_key_and_all_fields() {
        let mapper = Mapper::new(&selected("users", &["id"], &["updated_at"]), None).unwrap();
        let d = doc(mapper
            .map(&json!({ "id": 7, "name": "Ada", "updated_at": "2024-05-01T10:00:00+02:00" }))
            .unwrap());
        assert_eq!(d.id, "users/7");
        assert_eq!(d.title.as_deref(), Some("Ada"));
        assert_eq!(d.semantic_identifier, "Ada");
        assert!(d.sections[0].text.contains("name: Ada"));
        assert_eq!(
            d.updated_at.unwrap().to_rfc3339(),
            "2024-05-01T08:00:00+00:00"
        );
        assert_eq!(
            d.metadata["airbyte_stream"],
            MetadataValue::One("users".into())
        );
        // The default cursor is used for the date only when it is one.
        let d = doc(mapper.map(&json!({ "id": 8, "updated_at": 99.5 })).unwrap());
        assert_eq!(d.updated_at, None);
        assert_eq!(d.title.as_deref(), Some("users 8"));
    }

    #[test]
    fn configured_mapping() {
        let m = StreamMapping {
            id: Some(Pointers::Many(vec!["/repo".into(), "/n".into()])),
            title: Some("#{/n}: {/t}".into()),
            text: Some(TextMapping::Fields(vec![
                "/body".into(),
                "/user/login".into(),
            ])),
            link: Some("/url".into()),
            updated_at: Some("/at".into()),
            created_at: None,
            metadata: Some(MetadataMapping::Named(
                [("labels".to_owned(), "/labels".to_owned())].into(),
            )),
        };
        let mapper = Mapper::new(&selected("issues", &[], &[]), Some(&m)).unwrap();
        let d = doc(mapper
            .map(&json!({ "repo": "a/b", "n": 3, "t": "Bug", "body": "It breaks", "user": { "login": "ada" },
                          "url": "https://x/3", "at": 1_700_000_000, "labels": ["bug", "p1"] }))
            .unwrap());
        assert_eq!(d.id, "issues/a%2Fb/3");
        assert_eq!(d.title.as_deref(), Some("#3: Bug"));
        assert_eq!(d.sections[0].text, "body: It breaks\nuser.login: ada");
        assert_eq!(d.sections[0].link.as_deref(), Some("https://x/3"));
        assert_eq!(d.updated_at.unwrap().timestamp(), 1_700_000_000);
        assert_eq!(
            d.metadata["labels"],
            MetadataValue::Many(vec!["bug".into(), "p1".into()])
        );
        let bad_date = mapper
            .map(&json!({ "repo": "a", "n": 1, "at": "soon" }))
            .unwrap_err();
        assert_eq!(bad_date.id, "issues/a/1");
        assert!(bad_date.message.contains("/at"), "{}", bad_date.message);
    }

    #[test]
    fn failures_and_deletions() {
        let mapper = Mapper::new(&selected("users", &["id"], &[]), None).unwrap();
        let missing = mapper.map(&json!({ "name": "x" })).unwrap_err();
        assert_eq!(missing.id, "users");
        assert!(missing.message.contains("/id"));
        assert!(mapper.map(&json!({ "id": { "a": 1 } })).is_err());
        assert_eq!(
            mapper
                .map(&json!({ "id": "9", "_ab_cdc_deleted_at": "2024-01-01" }))
                .unwrap(),
            Mapped::Deleted("users/9".into())
        );
        assert!(matches!(
            Mapper::new(&selected("logs", &[], &[]), None),
            Err(SourceError::Config { .. })
        ));
    }

    #[test]
    fn dates() {
        for (v, want) in [
            (json!("2024-01-02T03:04:05Z"), "2024-01-02T03:04:05+00:00"),
            (json!("2024-01-02 03:04:05"), "2024-01-02T03:04:05+00:00"),
            (
                json!("2024-01-02T03:04:05.5"),
                "2024-01-02T03:04:05.500+00:00",
            ),
            (json!("2024-01-02"), "2024-01-02T00:00:00+00:00"),
            (json!(1_704_164_645_000_i64), "2024-01-02T03:04:05+00:00"),
        ] {
            assert_eq!(parse_date(&v).unwrap().to_rfc3339(), want, "{v}");
        }
        assert_eq!(parse_date(&json!("tomorrow")), None);
    }
}
