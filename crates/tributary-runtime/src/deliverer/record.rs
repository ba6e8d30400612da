//! A document record as the deliverer reads it: the run it belongs to, the targets it
//! is for, and — when it comes from a delay topic or a redrive — where it has been.

use chrono::{DateTime, Utc};
use rdkafka::Message;
use rdkafka::message::{Headers, OwnedMessage};
use tributary_domain::document::{DocumentRecord, headers};
use tributary_log::dead_letter::{Coordinates, H_REDRIVE, retry};
use uuid::Uuid;

pub(super) fn header<'a>(m: &'a OwnedMessage, name: &str) -> Option<&'a str> {
    m.headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

pub(super) fn time_header(m: &OwnedMessage, name: &str) -> Option<DateTime<Utc>> {
    header(m, name).and_then(parse_time)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The time a delayed record may be delivered again; `None` on a record that never
/// waited (or whose header cannot be read, which then goes at once rather than never).
pub(super) fn not_before(m: &OwnedMessage) -> Option<DateTime<Utc>> {
    time_header(m, retry::NOT_BEFORE)
}

/// Where the record was first written: its own place, or for a delayed record the
/// place its delay headers name.
pub(super) fn origin(m: &OwnedMessage) -> Coordinates {
    let carried = header(m, retry::ORIGINAL_TOPIC).zip(
        header(m, retry::ORIGINAL_PARTITION)
            .and_then(|p| p.parse().ok())
            .zip(header(m, retry::ORIGINAL_OFFSET).and_then(|o| o.parse().ok())),
    );
    match carried {
        Some((topic, (partition, offset))) => Coordinates {
            topic: topic.to_owned(),
            partition,
            offset,
        },
        None => Coordinates {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
        },
    }
}

/// One decoded document record.
pub(super) struct Item<'a> {
    pub(super) message: &'a OwnedMessage,
    pub(super) org: Uuid,
    pub(super) profile: Uuid,
    pub(super) run: Uuid,
    pub(super) attempt: u32,
    pub(super) seq: u64,
    pub(super) targets: Vec<Uuid>,
    pub(super) record: DocumentRecord,
    /// 0 from the documents topic, `n` from delay topic `n`.
    pub(super) level: u8,
    /// Delivery attempts made before this one (at earlier levels).
    pub(super) attempts: u32,
    pub(super) first_failure: Option<DateTime<Utc>>,
    /// The dead letter this record was redriven from: its run was answered already.
    pub(super) redrive_of: Option<Uuid>,
}

impl Item<'_> {
    pub(super) fn op(&self) -> &'static str {
        match self.record {
            DocumentRecord::Upsert { .. } => "upsert",
            DocumentRecord::Delete { .. } => "delete",
        }
    }
}

/// A record's headers read in one pass: looking each up in librdkafka walks them all.
struct HeaderMap<'a>(Vec<(&'a str, &'a str)>);

impl<'a> HeaderMap<'a> {
    fn of(m: &'a OwnedMessage) -> Self {
        Self(
            m.headers()
                .map(|hs| {
                    hs.iter()
                        .filter_map(|h| Some((h.key, std::str::from_utf8(h.value?).ok()?)))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

pub(super) fn decode(m: &OwnedMessage, level: u8) -> Result<Item<'_>, String> {
    let hs = HeaderMap::of(m);
    let uuid = |name: &str| {
        hs.get(name)
            .and_then(|v| v.parse::<Uuid>().ok())
            .ok_or_else(|| format!("the record has no valid {name} header"))
    };
    let number = |name: &str| {
        hs.get(name)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("the record has no valid {name} header"))
    };
    let targets = hs
        .get(headers::TARGETS)
        .ok_or("the record names no targets")?
        .split(',')
        .map(|t| {
            t.parse::<Uuid>()
                .map_err(|_| format!("{t:?} is not a target id"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let record = DocumentRecord::from_json(m.payload().unwrap_or_default(), hs.get(headers::OP))
        .map_err(|e| format!("the record is not a document record: {e}"))?;
    Ok(Item {
        message: m,
        org: uuid(headers::ORG)?,
        profile: uuid(headers::PROFILE)?,
        run: uuid(headers::RUN)?,
        attempt: number(headers::ATTEMPT)? as u32,
        seq: number(headers::SEQ)?,
        targets,
        record,
        level,
        attempts: hs
            .get(retry::ATTEMPTS)
            .and_then(|a| a.parse().ok())
            .unwrap_or(0),
        first_failure: hs.get(retry::FIRST_FAILURE).and_then(parse_time),
        redrive_of: hs.get(H_REDRIVE).and_then(|r| r.parse().ok()),
    })
}
