//! CloudEvents 1.0 in Kafka binary content mode: the record value is the JSON data and
//! every attribute is a `ce_` header. We own this small codec (rather than the SDK's
//! rdkafka binding, which pins an older rdkafka); see docs/decisions/0002.

use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use tributary_domain::OrgId;

pub const SPEC_VERSION: &str = "1.0";
pub const JSON: &str = "application/json";

const H_SPECVERSION: &str = "ce_specversion";
const H_ID: &str = "ce_id";
const H_SOURCE: &str = "ce_source";
const H_TYPE: &str = "ce_type";
const H_TIME: &str = "ce_time";
const H_SUBJECT: &str = "ce_subject";
const H_DATASCHEMA: &str = "ce_dataschema";
const H_ORGID: &str = "ce_orgid";
const H_CORRELATION: &str = "ce_correlationid";
const H_CAUSATION: &str = "ce_causationid";
const H_AGGVERSION: &str = "ce_aggversion";
const H_CONTENT_TYPE: &str = "content-type";

/// One CloudEvent: attributes plus the JSON data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub time: Option<DateTime<Utc>>,
    /// The aggregate id.
    pub subject: Option<String>,
    pub content_type: Option<String>,
    pub data_schema: Option<String>,
    pub org_id: Option<OrgId>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub agg_version: Option<u64>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("header {0} is missing")]
    Missing(&'static str),
    #[error("header {name} is not valid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error("specversion {0:?} is not supported; send 1.0")]
    SpecVersion(String),
}

impl Envelope {
    /// A new event with a fresh UUIDv7 id and the current time.
    pub fn new(source: impl Into<String>, ty: impl Into<String>, data: Vec<u8>) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            source: source.into(),
            ty: ty.into(),
            time: Some(Utc::now()),
            subject: None,
            content_type: Some(JSON.to_owned()),
            data_schema: None,
            org_id: None,
            correlation_id: None,
            causation_id: None,
            agg_version: None,
            data,
        }
    }

    pub fn json<T: serde::Serialize>(
        source: impl Into<String>,
        ty: impl Into<String>,
        data: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self::new(source, ty, serde_json::to_vec(data)?))
    }

    pub fn encode_headers(&self) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new_with_capacity(12)
            .insert(str_header(H_SPECVERSION, SPEC_VERSION))
            .insert(str_header(H_ID, &self.id))
            .insert(str_header(H_SOURCE, &self.source))
            .insert(str_header(H_TYPE, &self.ty));
        if let Some(time) = self.time {
            let text = time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            headers = headers.insert(str_header(H_TIME, &text));
        }
        let optional = [
            (H_SUBJECT, self.subject.as_deref()),
            (H_CONTENT_TYPE, self.content_type.as_deref()),
            (H_DATASCHEMA, self.data_schema.as_deref()),
            (H_CORRELATION, self.correlation_id.as_deref()),
            (H_CAUSATION, self.causation_id.as_deref()),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                headers = headers.insert(str_header(name, value));
            }
        }
        if let Some(org) = self.org_id {
            headers = headers.insert(str_header(H_ORGID, &org.to_string()));
        }
        if let Some(version) = self.agg_version {
            headers = headers.insert(str_header(H_AGGVERSION, &version.to_string()));
        }
        headers
    }

    /// Reads the attributes from the headers; unknown headers are ignored, as the
    /// binding requires.
    pub fn decode<H: Headers>(headers: Option<&H>, payload: &[u8]) -> Result<Self, DecodeError> {
        let mut attrs = RawAttrs::default();
        if let Some(headers) = headers {
            for header in headers.iter() {
                let Some(value) = header.value else { continue };
                let slot = match header.key {
                    H_SPECVERSION => &mut attrs.specversion,
                    H_ID => &mut attrs.id,
                    H_SOURCE => &mut attrs.source,
                    H_TYPE => &mut attrs.ty,
                    H_TIME => &mut attrs.time,
                    H_SUBJECT => &mut attrs.subject,
                    H_CONTENT_TYPE => &mut attrs.content_type,
                    H_DATASCHEMA => &mut attrs.data_schema,
                    H_ORGID => &mut attrs.org_id,
                    H_CORRELATION => &mut attrs.correlation_id,
                    H_CAUSATION => &mut attrs.causation_id,
                    H_AGGVERSION => &mut attrs.agg_version,
                    _ => continue,
                };
                *slot = Some(utf8(header.key, value)?);
            }
        }
        attrs.into_envelope(payload)
    }

    /// The data as JSON.
    pub fn data_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.data)
    }
}

fn str_header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

fn utf8(name: &str, value: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(value.to_vec()).map_err(|_| DecodeError::Invalid {
        name: static_name(name),
        reason: "not UTF-8".into(),
    })
}

fn static_name(name: &str) -> &'static str {
    [
        H_SPECVERSION,
        H_ID,
        H_SOURCE,
        H_TYPE,
        H_TIME,
        H_SUBJECT,
        H_CONTENT_TYPE,
        H_DATASCHEMA,
        H_ORGID,
        H_CORRELATION,
        H_CAUSATION,
        H_AGGVERSION,
    ]
    .into_iter()
    .find(|h| *h == name)
    .unwrap_or("header")
}

#[derive(Default)]
struct RawAttrs {
    specversion: Option<String>,
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    time: Option<String>,
    subject: Option<String>,
    content_type: Option<String>,
    data_schema: Option<String>,
    org_id: Option<String>,
    correlation_id: Option<String>,
    causation_id: Option<String>,
    agg_version: Option<String>,
}

impl RawAttrs {
    fn into_envelope(self, payload: &[u8]) -> Result<Envelope, DecodeError> {
        let specversion = self
            .specversion
            .ok_or(DecodeError::Missing(H_SPECVERSION))?;
        if specversion != SPEC_VERSION {
            return Err(DecodeError::SpecVersion(specversion));
        }
        let required = |value: Option<String>, name: &'static str| match value {
            Some(v) if !v.is_empty() => Ok(v),
            Some(_) => Err(DecodeError::Invalid {
                name,
                reason: "must not be empty".into(),
            }),
            None => Err(DecodeError::Missing(name)),
        };
        let time = self
            .time
            .map(|t| {
                DateTime::parse_from_rfc3339(&t)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| DecodeError::Invalid {
                        name: H_TIME,
                        reason: format!("{t:?} is not an RFC 3339 time: {e}"),
                    })
            })
            .transpose()?;
        let org_id = self
            .org_id
            .map(|o| {
                o.parse::<OrgId>().map_err(|e| DecodeError::Invalid {
                    name: H_ORGID,
                    reason: format!("{o:?} is not a UUID: {e}"),
                })
            })
            .transpose()?;
        let agg_version = self
            .agg_version
            .map(|v| {
                v.parse::<u64>().map_err(|e| DecodeError::Invalid {
                    name: H_AGGVERSION,
                    reason: format!("{v:?} is not a version number: {e}"),
                })
            })
            .transpose()?;
        Ok(Envelope {
            id: required(self.id, H_ID)?,
            source: required(self.source, H_SOURCE)?,
            ty: required(self.ty, H_TYPE)?,
            time,
            subject: self.subject,
            content_type: self.content_type,
            data_schema: self.data_schema,
            org_id,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            agg_version,
            data: payload.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use rdkafka::message::OwnedHeaders;

    fn opt_text() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("[ -~]{1,40}")
    }

    prop_compose! {
        fn envelope()(
            id in "[ -~]{1,40}",
            source in "[ -~]{1,40}",
            ty in "[a-z.]{1,40}",
            nanos in proptest::option::of(0i64..4_000_000_000_000_000_000),
            subject in opt_text(),
            content_type in opt_text(),
            data_schema in opt_text(),
            org in proptest::option::of(any::<u128>()),
            correlation_id in opt_text(),
            causation_id in opt_text(),
            agg_version in proptest::option::of(any::<u64>()),
            data in proptest::collection::vec(any::<u8>(), 0..256),
        ) -> Envelope {
            Envelope {
                id, source, ty,
                time: nanos.map(|n| Utc.timestamp_nanos(n)),
                subject, content_type, data_schema,
                org_id: org.map(|o| OrgId(uuid::Uuid::from_u128(o))),
                correlation_id, causation_id, agg_version, data,
            }
        }
    }

    proptest! {
        #[test]
        fn round_trips_through_kafka_headers(env in envelope()) {
            let headers: OwnedHeaders = env.encode_headers();
            let decoded = Envelope::decode(Some(&headers), &env.data).unwrap();
            prop_assert_eq!(decoded, env);
        }
    }

    #[test]
    fn a_missing_type_is_named() {
        let headers = OwnedHeaders::new()
            .insert(str_header(H_SPECVERSION, "1.0"))
            .insert(str_header(H_ID, "1"))
            .insert(str_header(H_SOURCE, "/x"));
        assert_eq!(
            Envelope::decode(Some(&headers), b"{}"),
            Err(DecodeError::Missing(H_TYPE))
        );
    }

    #[test]
    fn another_specversion_is_refused() {
        let headers = OwnedHeaders::new().insert(str_header(H_SPECVERSION, "0.3"));
        assert_eq!(
            Envelope::decode(Some(&headers), b"{}"),
            Err(DecodeError::SpecVersion("0.3".into()))
        );
    }

    #[test]
    fn no_headers_at_all_is_missing_specversion() {
        assert_eq!(
            Envelope::decode::<OwnedHeaders>(None, b"{}"),
            Err(DecodeError::Missing(H_SPECVERSION))
        );
    }
}
