//! The Airbyte protocol messages Tributary reads: one JSON object per stdout line.
//! Only the fields used are parsed; anything else in a message is ignored, so newer
//! protocol versions keep working.

use serde::Deserialize;
use serde_json::Value;

use super::config::SyncMode;

/// One stdout line, read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Line {
    Message(Message),
    /// Not an Airbyte message (a stray print, a half-written line): shown as a warning.
    NotAMessage {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Record(Record),
    /// An `AirbyteStateMessage`, as the source sent it.
    State(Value),
    Log {
        level: LogLevel,
        message: String,
    },
    Trace(Trace),
    /// A `CONNECTOR_CONFIG` control message: the source's whole new config.
    ConnectorConfig(Value),
    Catalog(Vec<DiscoveredStream>),
    /// The `connectionSpecification` of a SPEC message.
    Spec(Value),
    ConnectionStatus {
        succeeded: bool,
        message: String,
    },
    /// A message type Tributary has no use for (or a newer one).
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) stream: String,
    pub(crate) namespace: Option<String>,
    pub(crate) data: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Trace {
    Error(TraceError),
    /// Expected rows for a stream (or the whole sync when `stream` is `None`).
    Estimate {
        stream: Option<String>,
        rows: u64,
    },
    StreamStatus {
        stream: String,
        status: String,
    },
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TraceError {
    pub(crate) failure_type: FailureType,
    pub(crate) message: String,
    pub(crate) internal_message: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureType {
    Config,
    Transient,
    System,
}

/// A stream as the source's CATALOG describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveredStream {
    pub name: String,
    pub namespace: Option<String>,
    /// Sync modes the stream supports; modes this version does not know are left out.
    pub supported_sync_modes: Vec<SyncMode>,
    /// Whether the source picks the cursor itself (then `cursor_field` is ignored).
    pub source_defined_cursor: bool,
    pub default_cursor_field: Vec<String>,
    pub source_defined_primary_key: Vec<Vec<String>>,
    /// The stream object as sent, passed back unchanged in the configured catalog.
    pub(crate) raw: Value,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    record: Option<RawRecord>,
    state: Option<Value>,
    log: Option<RawLog>,
    trace: Option<RawTrace>,
    control: Option<RawControl>,
    catalog: Option<RawCatalog>,
    spec: Option<RawSpec>,
    #[serde(rename = "connectionStatus")]
    connection_status: Option<RawStatus>,
}

#[derive(Deserialize)]
struct RawRecord {
    stream: String,
    namespace: Option<String>,
    data: Value,
}

#[derive(Deserialize)]
struct RawLog {
    level: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct RawTrace {
    #[serde(rename = "type")]
    kind: String,
    error: Option<RawTraceError>,
    estimate: Option<RawEstimate>,
    stream_status: Option<RawStreamStatus>,
}

#[derive(Deserialize)]
struct RawTraceError {
    #[serde(default)]
    message: String,
    internal_message: Option<String>,
    failure_type: Option<String>,
}

#[derive(Deserialize)]
struct RawEstimate {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    row_estimate: Option<Value>,
}

#[derive(Deserialize)]
struct RawStreamStatus {
    stream_descriptor: RawDescriptor,
    status: String,
}

#[derive(Deserialize)]
struct RawDescriptor {
    name: String,
}

#[derive(Deserialize)]
struct RawControl {
    #[serde(rename = "type")]
    kind: String,
    #[serde(rename = "connectorConfig")]
    connector_config: Option<RawConnectorConfig>,
}

#[derive(Deserialize)]
struct RawConnectorConfig {
    config: Value,
}

#[derive(Deserialize)]
struct RawCatalog {
    streams: Vec<Value>,
}

#[derive(Deserialize)]
struct RawSpec {
    #[serde(rename = "connectionSpecification")]
    connection_specification: Value,
}

#[derive(Deserialize)]
struct RawStatus {
    status: String,
    message: Option<String>,
}

#[derive(Deserialize)]
struct RawStream {
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    supported_sync_modes: Vec<String>,
    #[serde(default)]
    source_defined_cursor: Option<bool>,
    #[serde(default)]
    default_cursor_field: Option<Vec<String>>,
    #[serde(default)]
    source_defined_primary_key: Option<Vec<Vec<String>>>,
}

/// Reads one stdout line (without its newline).
pub(crate) fn parse_line(line: &[u8]) -> Line {
    let envelope: Envelope = match serde_json::from_slice(line) {
        Ok(e) => e,
        Err(e) => {
            return Line::NotAMessage {
                reason: format!("not an Airbyte message ({e})"),
            };
        }
    };
    let missing = |field: &str| Line::NotAMessage {
        reason: format!("a {} message without its `{field}` field", envelope.kind),
    };
    let message = match envelope.kind.as_str() {
        "RECORD" => match envelope.record {
            Some(r) => Message::Record(Record {
                stream: r.stream,
                namespace: r.namespace,
                data: r.data,
            }),
            None => return missing("record"),
        },
        "STATE" => match envelope.state {
            Some(s) => Message::State(s),
            None => return missing("state"),
        },
        "LOG" => match envelope.log {
            Some(l) => Message::Log {
                level: log_level(&l.level),
                message: l.message,
            },
            None => return missing("log"),
        },
        "TRACE" => match envelope.trace {
            Some(t) => Message::Trace(trace(t)),
            None => return missing("trace"),
        },
        "CONTROL" => match envelope.control {
            Some(RawControl {
                kind,
                connector_config: Some(c),
            }) if kind == "CONNECTOR_CONFIG" => Message::ConnectorConfig(c.config),
            Some(_) => Message::Other,
            None => return missing("control"),
        },
        "CATALOG" => match envelope.catalog {
            Some(c) => match c.streams.into_iter().map(stream).collect() {
                Ok(streams) => Message::Catalog(streams),
                Err(reason) => return Line::NotAMessage { reason },
            },
            None => return missing("catalog"),
        },
        "SPEC" => match envelope.spec {
            Some(s) => Message::Spec(s.connection_specification),
            None => return missing("spec"),
        },
        "CONNECTION_STATUS" => match envelope.connection_status {
            Some(s) => Message::ConnectionStatus {
                succeeded: s.status == "SUCCEEDED",
                message: s.message.unwrap_or_default(),
            },
            None => return missing("connectionStatus"),
        },
        _ => Message::Other,
    };
    Line::Message(message)
}

fn log_level(level: &str) -> LogLevel {
    match level {
        "FATAL" | "ERROR" => LogLevel::Error,
        "WARN" | "WARNING" => LogLevel::Warn,
        "DEBUG" => LogLevel::Debug,
        "TRACE" => LogLevel::Trace,
        _ => LogLevel::Info,
    }
}

fn trace(t: RawTrace) -> Trace {
    match (t.kind.as_str(), t.error, t.estimate, t.stream_status) {
        ("ERROR", Some(e), _, _) => Trace::Error(TraceError {
            // An unknown or missing failure type is treated as the protocol's default.
            failure_type: match e.failure_type.as_deref() {
                Some("config_error") => FailureType::Config,
                Some("transient_error") => FailureType::Transient,
                _ => FailureType::System,
            },
            message: e.message,
            internal_message: e.internal_message,
        }),
        ("ESTIMATE", _, Some(e), _) => {
            let rows = e.row_estimate.as_ref().and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            });
            match rows {
                Some(rows) => Trace::Estimate {
                    stream: match e.kind.as_deref() {
                        Some("SYNC") => None,
                        _ => e.name,
                    },
                    rows,
                },
                None => Trace::Other,
            }
        }
        ("STREAM_STATUS", _, _, Some(s)) => Trace::StreamStatus {
            stream: s.stream_descriptor.name,
            status: s.status,
        },
        _ => Trace::Other,
    }
}

fn stream(raw: Value) -> Result<DiscoveredStream, String> {
    let s: RawStream = serde_json::from_value(raw.clone())
        .map_err(|e| format!("a CATALOG message with a malformed stream ({e})"))?;
    Ok(DiscoveredStream {
        name: s.name,
        namespace: s.namespace,
        supported_sync_modes: s
            .supported_sync_modes
            .iter()
            .filter_map(|m| match m.as_str() {
                "incremental" => Some(SyncMode::Incremental),
                "full_refresh" => Some(SyncMode::FullRefresh),
                _ => None,
            })
            .collect(),
        source_defined_cursor: s.source_defined_cursor.unwrap_or(false),
        default_cursor_field: s.default_cursor_field.unwrap_or_default(),
        source_defined_primary_key: s.source_defined_primary_key.unwrap_or_default(),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(line: &str) -> Message {
        match parse_line(line.as_bytes()) {
            Line::Message(m) => m,
            Line::NotAMessage { reason } => panic!("{line}: {reason}"),
        }
    }

    #[test]
    fn reads_each_message_type() {
        assert_eq!(
            message(
                r#"{"type":"RECORD","record":{"stream":"users","data":{"id":1},"emitted_at":1}}"#
            ),
            Message::Record(Record {
                stream: "users".into(),
                namespace: None,
                data: json!({ "id": 1 })
            })
        );
        assert_eq!(
            message(
                r#"{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"u"},"stream_state":{"c":1}}}}"#
            ),
            Message::State(
                json!({"type":"STREAM","stream":{"stream_descriptor":{"name":"u"},"stream_state":{"c":1}}})
            )
        );
        assert_eq!(
            message(r#"{"type":"LOG","log":{"level":"FATAL","message":"boom"}}"#),
            Message::Log {
                level: LogLevel::Error,
                message: "boom".into()
            }
        );
        assert_eq!(
            message(
                r#"{"type":"TRACE","trace":{"type":"ERROR","emitted_at":1.5,"error":{"message":"m","internal_message":"i","failure_type":"transient_error"}}}"#
            ),
            Message::Trace(Trace::Error(TraceError {
                failure_type: FailureType::Transient,
                message: "m".into(),
                internal_message: Some("i".into())
            }))
        );
        assert_eq!(
            message(
                r#"{"type":"TRACE","trace":{"type":"ESTIMATE","estimate":{"name":"users","type":"STREAM","row_estimate":200}}}"#
            ),
            Message::Trace(Trace::Estimate {
                stream: Some("users".into()),
                rows: 200
            })
        );
        assert_eq!(
            message(
                r#"{"type":"TRACE","trace":{"type":"STREAM_STATUS","stream_status":{"stream_descriptor":{"name":"users"},"status":"COMPLETE"}}}"#
            ),
            Message::Trace(Trace::StreamStatus {
                stream: "users".into(),
                status: "COMPLETE".into()
            })
        );
        assert_eq!(
            message(
                r#"{"type":"CONTROL","control":{"type":"CONNECTOR_CONFIG","emitted_at":1,"connectorConfig":{"config":{"token":"t2"}}}}"#
            ),
            Message::ConnectorConfig(json!({ "token": "t2" }))
        );
        assert_eq!(
            message(
                r#"{"type":"CONNECTION_STATUS","connectionStatus":{"status":"FAILED","message":"no"}}"#
            ),
            Message::ConnectionStatus {
                succeeded: false,
                message: "no".into()
            }
        );
        assert_eq!(
            message(r#"{"type":"SPEC","spec":{"connectionSpecification":{"type":"object"}}}"#),
            Message::Spec(json!({ "type": "object" }))
        );
        assert_eq!(message(r#"{"type":"FUTURE_THING","x":1}"#), Message::Other);
    }

    #[test]
    fn reads_a_catalog() {
        let Message::Catalog(streams) = message(
            r#"{"type":"CATALOG","catalog":{"streams":[{"name":"users","json_schema":{},"supported_sync_modes":["full_refresh","incremental","future"],"source_defined_cursor":true,"default_cursor_field":["updated_at"],"source_defined_primary_key":[["id"]]}]}}"#,
        ) else {
            panic!("not a catalog");
        };
        assert_eq!(streams[0].name, "users");
        assert_eq!(
            streams[0].supported_sync_modes,
            [SyncMode::FullRefresh, SyncMode::Incremental]
        );
        assert_eq!(streams[0].source_defined_primary_key, [["id"]]);
        assert_eq!(streams[0].raw["json_schema"], json!({}));
    }

    #[test]
    fn other_lines_are_not_messages() {
        for line in ["hello", "{\"type\":\"RECORD\"}", "[1,2]", "{\"record\":{}}"] {
            assert!(
                matches!(parse_line(line.as_bytes()), Line::NotAMessage { .. }),
                "{line}"
            );
        }
    }
}
