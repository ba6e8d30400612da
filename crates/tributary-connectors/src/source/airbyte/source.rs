//! The airbyte [`Source`]: `read` turned into batches, `list_ids` and `check`.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;

use futures::future::BoxFuture;
use serde_json::Value;
use tributary_domain::document::DocumentFailure;

use super::catalog::{self, Selected};
use super::config::{AirbyteConfig, SyncMode};
use super::connector::{AirbyteConnector, Session};
use super::mapping::{Mapped, Mapper};
use super::process::Scratch;
use super::protocol::{DiscoveredStream, Line, Message, Record, Trace, parse_line};
use super::redact::clip;
use super::state::{Checkpoint, StateStore};
use crate::source::{Batch, BuildContext, Mode, Progress, Result, Source, SourceError};

/// Non-message stdout lines reported one by one; after that only their count.
const MAX_LINE_WARNINGS: u64 = 10;

pub(crate) struct AirbyteSource {
    conn: AirbyteConnector,
    /// Whether the states held belong to this run (a resume), so that full-refresh
    /// streams continue rather than start over.
    resuming: bool,
    streams: Option<Streams>,
    states: StateStore,
    /// Records produced in this run, resumes included.
    done: u64,
    /// `done` as of the last batch returned: where a restart counts from.
    returned_done: u64,
    /// Row estimates per stream (`None`: for the whole sync).
    estimates: BTreeMap<Option<String>, u64>,
    run: Option<Session>,
    finished: bool,
    batch: Batch,
    batch_records: usize,
    odd_lines: u64,
}

/// The selected streams and their mappers, settled once per source.
struct Streams {
    selected: Vec<Selected>,
    mappers: HashMap<(Option<String>, String), Mapper>,
}

impl Streams {
    fn mapper(&self, record: &Record) -> Option<&Mapper> {
        self.mappers
            .get(&(record.namespace.clone(), record.stream.clone()))
            .or_else(|| {
                // Some sources leave the namespace out of records of namespaced streams.
                self.mappers
                    .iter()
                    .find(|((_, name), _)| *name == record.stream)
                    .map(|(_, m)| m)
            })
    }
}

pub(crate) fn build(ctx: BuildContext) -> Result<Box<dyn Source>> {
    let config = AirbyteConfig::from_value(ctx.config)?;
    let conn = AirbyteConnector::new(config, ctx.credential, ctx.work_dir)?;
    let checkpoint = match &ctx.start.checkpoint {
        Some(c) if ctx.start.resuming || ctx.start.mode == Mode::Incremental => {
            Some(Checkpoint::from_value(c)?)
        }
        _ => None,
    };
    let (states, done) = match &checkpoint {
        Some(c) => (
            StateStore::from_states(&c.states),
            if ctx.start.resuming { c.records } else { 0 },
        ),
        None => (StateStore::default(), 0),
    };
    Ok(Box::new(AirbyteSource {
        conn,
        resuming: ctx.start.resuming,
        streams: None,
        states,
        done,
        returned_done: done,
        estimates: BTreeMap::new(),
        run: None,
        finished: false,
        batch: Batch::default(),
        batch_records: 0,
        odd_lines: 0,
    }))
}

impl Source for AirbyteSource {
    fn next_batch(&mut self) -> BoxFuture<'_, Result<Option<Batch>>> {
        Box::pin(self.next())
    }

    fn list_ids(&mut self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(self.ids())
    }

    fn check(&mut self) -> BoxFuture<'_, Result<String>> {
        Box::pin(self.check_all())
    }
}

impl AirbyteSource {
    async fn next(&mut self) -> Result<Option<Batch>> {
        loop {
            if self.finished {
                // A check or listing after the run may still have rotated the credential.
                return Ok(self.conn.take_credential_update().map(|update| Batch {
                    credential_update: Some(update),
                    checkpoint: self.checkpoint(),
                    progress: self.progress(),
                    ..Batch::default()
                }));
            }
            let Some(run) = self.run.as_mut() else {
                self.start().await?;
                continue;
            };
            let line = match run.process.next_line().await {
                Ok(line) => line,
                Err(e) => {
                    self.abandon();
                    return Err(e);
                }
            };
            match line {
                Some(line) => {
                    if let Some(batch) = self.handle(&line) {
                        return Ok(Some(batch));
                    }
                }
                None => return self.end_of_read().await,
            }
        }
    }

    /// The selected streams and their mappers, from one `discover` per source.
    async fn streams(&mut self) -> Result<&Streams> {
        let streams = match self.streams.take() {
            Some(s) => s,
            None => {
                let discovered = self.conn.discover().await?;
                self.settle(&discovered)?
            }
        };
        Ok(self.streams.insert(streams))
    }

    fn settle(&self, discovered: &[DiscoveredStream]) -> Result<Streams> {
        let config = self.conn.config();
        let selected = catalog::select(discovered, config.streams.as_deref())?;
        if selected.is_empty() {
            return Err(SourceError::Config {
                message: "the Airbyte source offers no streams to sync; check its config"
                    .to_owned(),
            });
        }
        for name in config.mapping.keys() {
            if !selected.iter().any(|s| s.stream.name == *name) {
                return Err(SourceError::Config {
                    message: format!(
                        "`mapping` names stream {name}, which is not synced (synced: {}); fix `mapping` or `streams`",
                        selected
                            .iter()
                            .map(|s| s.stream.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let mut mappers = HashMap::new();
        for s in &selected {
            mappers.insert(s.key(), Mapper::new(s, config.mapping.get(&s.stream.name))?);
        }
        Ok(Streams { selected, mappers })
    }

    async fn start(&mut self) -> Result<()> {
        let (catalog, full_refresh) = {
            let selected = &self.streams().await?.selected;
            let full_refresh: Vec<_> = selected
                .iter()
                .filter(|s| s.sync_mode == SyncMode::FullRefresh)
                .map(Selected::key)
                .collect();
            (catalog::configured_catalog(selected, false), full_refresh)
        };
        if !self.resuming {
            // A new run reads full-refresh streams from the start; only a resume
            // continues them from their (resumable full refresh) state.
            self.states.forget_streams(&full_refresh);
        }
        let mut scratch = Scratch::new(self.conn.work_dir());
        let config = self.conn.write_config(&mut scratch).await?;
        let catalog = scratch.write("catalog", &catalog).await?;
        let mut args: Vec<OsString> = vec![
            "read".into(),
            "--config".into(),
            config.into(),
            "--catalog".into(),
            catalog.into(),
        ];
        if !self.states.is_empty() {
            let state = scratch.write("state", &self.states.state_file()).await?;
            args.extend(["--state".into(), state.into()]);
        }
        self.run = Some(self.conn.spawn(args, scratch)?);
        // From here on the states held are this run's, also after a failed attempt.
        self.resuming = true;
        Ok(())
    }

    /// Handles one line of `read`; returns a batch when the line ends one.
    fn handle(&mut self, line: &[u8]) -> Option<Batch> {
        let message = match parse_line(line) {
            Line::Message(m) => m,
            Line::NotAMessage { reason } => {
                if line.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                self.odd_lines += 1;
                if self.odd_lines <= MAX_LINE_WARNINGS {
                    let text = clip(&String::from_utf8_lossy(line), 200, false);
                    self.batch.warnings.push(format!(
                        "the Airbyte source wrote a line that is {reason}: {}",
                        self.conn.quote(&text)
                    ));
                } else if self.odd_lines == MAX_LINE_WARNINGS + 1 {
                    self.batch.warnings.push(
                        "the Airbyte source wrote more lines that are not Airbyte messages; they are not shown".to_owned(),
                    );
                }
                return None;
            }
        };
        let run = self.run.as_mut()?;
        match self.conn.observe(run, message)? {
            Message::Record(record) => {
                self.record(record);
                (self.batch_records >= self.conn.config().batch_size).then(|| self.cut())
            }
            Message::State(state) => {
                self.states.apply(state);
                Some(self.cut())
            }
            Message::ConnectorConfig(config) => {
                if let Some(w) = self.conn.apply_control(config) {
                    self.batch.warnings.push(w);
                }
                // The update is committed now: the old token may already be revoked.
                Some(self.cut())
            }
            Message::Trace(Trace::Estimate { stream, rows }) => {
                self.estimates.insert(stream, rows);
                None
            }
            Message::Trace(Trace::StreamStatus { stream, status }) => {
                if status == "INCOMPLETE" {
                    self.batch.warnings.push(format!(
                        "the Airbyte source reports that stream {stream} did not complete"
                    ));
                }
                None
            }
            _ => None,
        }
    }

    fn record(&mut self, record: Record) {
        self.done += 1;
        self.batch_records += 1;
        let Some(streams) = &self.streams else { return };
        let Some(mapper) = streams.mapper(&record) else {
            self.batch.failures.push(DocumentFailure {
                id: record.stream.clone(),
                link: None,
                message: format!(
                    "the Airbyte source sent a record of stream {}, which is not synced; it was skipped",
                    record.stream
                ),
            });
            return;
        };
        match mapper.map(&record.data) {
            Ok(Mapped::Document(doc)) => self.batch.documents.push(*doc),
            Ok(Mapped::Deleted(id)) => self.batch.deleted.push(id),
            Err(f) => self.batch.failures.push(DocumentFailure {
                id: self.conn.quote(&f.id),
                link: None,
                message: self.conn.quote(&f.message),
            }),
        }
    }

    fn checkpoint(&self) -> Value {
        Checkpoint {
            v: 1,
            states: self.states.to_vec(),
            records: self.done,
        }
        .to_value()
    }

    fn progress(&self) -> Progress {
        let total = self
            .estimates
            .get(&None)
            .copied()
            .or_else(|| (!self.estimates.is_empty()).then(|| self.estimates.values().sum()));
        Progress {
            done: self.done,
            total: total.map(|t| t.max(self.done)),
        }
    }

    /// Ends the current batch at the states seen so far.
    fn cut(&mut self) -> Batch {
        let mut batch = std::mem::take(&mut self.batch);
        batch.checkpoint = self.checkpoint();
        batch.progress = self.progress();
        batch.credential_update = self.conn.take_credential_update();
        self.batch_records = 0;
        self.returned_done = self.done;
        batch
    }

    /// Drops the process and what was read since the last batch: a retry starts again
    /// from the last checkpoint returned.
    fn abandon(&mut self) {
        self.run = None;
        self.batch = Batch::default();
        self.batch_records = 0;
        self.done = self.returned_done;
    }

    async fn end_of_read(&mut self) -> Result<Option<Batch>> {
        let Some(run) = self.run.take() else {
            return Ok(None);
        };
        if let Err(e) = self.conn.outcome("read", run.finish().await) {
            self.abandon();
            return Err(e);
        }
        self.finished = true;
        let pending = self.batch_records > 0
            || !self.batch.warnings.is_empty()
            || !self.batch.failures.is_empty()
            || !self.batch.deleted.is_empty();
        Ok(pending.then(|| self.cut()))
    }

    async fn ids(&mut self) -> Result<Vec<String>> {
        let catalog = {
            let selected = &self.streams().await?.selected;
            if selected.iter().any(|s| {
                let modes = &s.stream.supported_sync_modes;
                !modes.is_empty() && !modes.contains(&SyncMode::FullRefresh)
            }) {
                return Err(SourceError::Unsupported {
                    kind: "airbyte",
                    what: "list ids of a stream that only supports incremental sync",
                });
            }
            catalog::configured_catalog(selected, true)
        };
        let mut scratch = Scratch::new(self.conn.work_dir());
        let config = self.conn.write_config(&mut scratch).await?;
        let catalog = scratch.write("catalog", &catalog).await?;
        let args: Vec<OsString> = vec![
            "read".into(),
            "--config".into(),
            config.into(),
            "--catalog".into(),
            catalog.into(),
        ];
        let mut session = self.conn.spawn(args, scratch)?;
        let mut ids = Vec::new();
        while let Some(line) = session.process.next_line().await? {
            let Line::Message(message) = parse_line(&line) else {
                continue;
            };
            match self.conn.observe(&mut session, message) {
                Some(Message::Record(record)) => {
                    let mapper = self.streams.as_ref().and_then(|s| s.mapper(&record));
                    // A record without an id never became a document: nothing to keep.
                    if let Some(Ok(id)) = mapper.map(|m| m.id(&record.data))
                        && !Mapper::is_deleted(&record.data)
                    {
                        ids.push(id);
                    }
                }
                Some(Message::ConnectorConfig(config)) => {
                    if let Some(w) = self.conn.apply_control(config) {
                        tracing::warn!("{w}");
                    }
                }
                _ => {}
            }
        }
        self.conn.outcome("read", session.finish().await)?;
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    async fn check_all(&mut self) -> Result<String> {
        let accepted = self.conn.check().await?;
        // Settling the streams here makes a bad `streams` or `mapping` fail the check
        // rather than the first run.
        let discovered = self.conn.discover().await?;
        let streams = self.settle(&discovered)?;
        let syncing: Vec<String> = streams
            .selected
            .iter()
            .map(|s| format!("{} ({})", s.stream.name, s.sync_mode.as_str()))
            .collect();
        let message = format!(
            "{accepted}; {} stream(s) available, syncing {}",
            discovered.len(),
            syncing.join(", ")
        );
        if self.streams.is_none() {
            self.streams = Some(streams);
        }
        Ok(message)
    }
}
