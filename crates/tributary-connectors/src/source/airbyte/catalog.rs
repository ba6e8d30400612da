//! Which discovered streams to sync and how: the configured catalog passed to `read`.

use serde_json::{Value, json};

use super::config::{StreamConfig, SyncMode};
use super::protocol::DiscoveredStream;
use crate::source::{Result, SourceError};

/// A stream chosen for the sync, with its mode, cursor and primary key settled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Selected {
    pub(crate) stream: DiscoveredStream,
    pub(crate) sync_mode: SyncMode,
    /// Empty for full-refresh streams.
    pub(crate) cursor_field: Vec<String>,
    pub(crate) primary_key: Vec<Vec<String>>,
}

impl Selected {
    pub(crate) fn key(&self) -> (Option<String>, String) {
        (self.stream.namespace.clone(), self.stream.name.clone())
    }
}

/// The streams to sync: those configured (each must exist), or every discovered one.
pub(crate) fn select(
    discovered: &[DiscoveredStream],
    configured: Option<&[StreamConfig]>,
) -> Result<Vec<Selected>> {
    let Some(configured) = configured else {
        return discovered.iter().map(|s| settle(s, None)).collect();
    };
    configured
        .iter()
        .map(|c| {
            let found = discovered.iter().find(|s| {
                s.name == c.name && (c.namespace.is_none() || s.namespace == c.namespace)
            });
            match found {
                Some(s) => settle(s, Some(c)),
                None => Err(SourceError::Config {
                    message: format!(
                        "the Airbyte source has no stream {}; it has {}. Fix `streams`",
                        c.name,
                        names(discovered)
                    ),
                }),
            }
        })
        .collect()
}

pub(crate) fn names(streams: &[DiscoveredStream]) -> String {
    if streams.is_empty() {
        return "none".to_owned();
    }
    streams
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn settle(stream: &DiscoveredStream, config: Option<&StreamConfig>) -> Result<Selected> {
    let name = &stream.name;
    let supports = |m| stream.supported_sync_modes.contains(&m);
    let cursor_field = config
        .and_then(|c| c.cursor_field.clone())
        .unwrap_or_else(|| stream.default_cursor_field.clone());
    let has_cursor = stream.source_defined_cursor || !cursor_field.is_empty();
    let sync_mode = match config.and_then(|c| c.sync_mode) {
        Some(SyncMode::Incremental) if !supports(SyncMode::Incremental) => {
            return Err(SourceError::Config {
                message: format!(
                    "stream {name} does not support incremental sync; set its `sync_mode` to full_refresh"
                ),
            });
        }
        Some(SyncMode::Incremental) if !has_cursor => {
            return Err(SourceError::Config {
                message: format!(
                    "stream {name} has no default cursor; set its `cursor_field` to the field that grows with each change, e.g. [\"updated_at\"]"
                ),
            });
        }
        Some(SyncMode::FullRefresh) if !supports(SyncMode::FullRefresh) => {
            return Err(SourceError::Config {
                message: format!(
                    "stream {name} only supports incremental sync; set its `sync_mode` to incremental"
                ),
            });
        }
        Some(mode) => mode,
        None if supports(SyncMode::Incremental) && has_cursor => SyncMode::Incremental,
        None if supports(SyncMode::FullRefresh) || stream.supported_sync_modes.is_empty() => {
            SyncMode::FullRefresh
        }
        None => {
            return Err(SourceError::Config {
                message: format!(
                    "stream {name} supports neither full refresh nor incremental sync with a known cursor; set its `sync_mode` and `cursor_field`, or leave it out of `streams`"
                ),
            });
        }
    };
    Ok(Selected {
        stream: stream.clone(),
        sync_mode,
        cursor_field: match sync_mode {
            SyncMode::Incremental => cursor_field,
            SyncMode::FullRefresh => Vec::new(),
        },
        primary_key: config
            .and_then(|c| c.primary_key.clone())
            .unwrap_or_else(|| stream.source_defined_primary_key.clone()),
    })
}

/// The configured catalog for `read`. `full_refresh_only` is for listing ids, which must
/// see every record whatever the state.
pub(crate) fn configured_catalog(selected: &[Selected], full_refresh_only: bool) -> Value {
    let streams: Vec<Value> = selected
        .iter()
        .map(|s| {
            let mode = if full_refresh_only {
                SyncMode::FullRefresh
            } else {
                s.sync_mode
            };
            let mut configured = json!({
                "stream": s.stream.raw,
                "sync_mode": mode.as_str(),
                "destination_sync_mode": match mode {
                    SyncMode::Incremental => "append",
                    SyncMode::FullRefresh => "overwrite",
                },
            });
            if mode == SyncMode::Incremental && !s.cursor_field.is_empty() {
                configured["cursor_field"] = json!(s.cursor_field);
            }
            if !s.primary_key.is_empty() {
                configured["primary_key"] = json!(s.primary_key);
            }
            configured
        })
        .collect();
    json!({ "streams": streams })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered(name: &str, modes: &[SyncMode], cursor: &[&str]) -> DiscoveredStream {
        DiscoveredStream {
            name: name.into(),
            namespace: None,
            supported_sync_modes: modes.to_vec(),
            source_defined_cursor: !cursor.is_empty(),
            default_cursor_field: cursor.iter().map(|s| (*s).to_owned()).collect(),
            source_defined_primary_key: vec![vec!["id".into()]],
            raw: json!({ "name": name, "json_schema": {} }),
        }
    }

    fn stream_config(name: &str, mode: Option<SyncMode>) -> StreamConfig {
        StreamConfig {
            name: name.into(),
            namespace: None,
            sync_mode: mode,
            cursor_field: None,
            primary_key: None,
        }
    }

    #[test]
    fn defaults_to_every_stream_incremental_where_possible() {
        let both = [SyncMode::FullRefresh, SyncMode::Incremental];
        let streams = [
            discovered("users", &both, &["updated_at"]),
            discovered("tags", &[SyncMode::FullRefresh], &[]),
        ];
        let selected = select(&streams, None).unwrap();
        assert_eq!(selected[0].sync_mode, SyncMode::Incremental);
        assert_eq!(selected[1].sync_mode, SyncMode::FullRefresh);
        let catalog = configured_catalog(&selected, false);
        assert_eq!(
            catalog["streams"][0],
            json!({
                "stream": { "name": "users", "json_schema": {} },
                "sync_mode": "incremental",
                "destination_sync_mode": "append",
                "cursor_field": ["updated_at"],
                "primary_key": [["id"]]
            })
        );
        assert_eq!(
            configured_catalog(&selected, true)["streams"][0]["sync_mode"],
            "full_refresh"
        );
    }

    #[test]
    fn configured_streams_are_checked() {
        let streams = [discovered("tags", &[SyncMode::FullRefresh], &[])];
        let err = select(&streams, Some(&[stream_config("users", None)])).unwrap_err();
        assert!(err.to_string().contains("it has tags"), "{err}");
        let err = select(
            &streams,
            Some(&[stream_config("tags", Some(SyncMode::Incremental))]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("full_refresh"), "{err}");
    }
}
