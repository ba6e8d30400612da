//! The credential aggregate, keyed by the credential id: the secrets a connector or a
//! destination signs in with, for one org.
//!
//! Secret fields never reach this aggregate in plaintext. The API seals each one under
//! the org's data key (AES-256-GCM, associated data binding org, credential and field)
//! before the command is produced, and sends a display mask along, so neither the log
//! nor a read model ever needs the plaintext. The aggregate keeps the sealed values of
//! the current secret version and, during a rotation, of the pending one: the previous
//! secrets stay in use until the new ones passed a test or an admin confirmed them.

#[cfg(test)]
pub(crate) mod tests;

use crate::aggregate::{Aggregate, Decision, Rejection, RejectionCode, parse_data};
use crate::ids::{CredentialId, OrgId};
use crate::org::validate_name;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const CREATE: &str = "tributary.credential.create.v1";
pub const UPDATE: &str = "tributary.credential.update.v1";
pub const ROTATE: &str = "tributary.credential.rotate.v1";
pub const CONFIRM_ROTATION: &str = "tributary.credential.confirm_rotation.v1";
pub const CANCEL_ROTATION: &str = "tributary.credential.cancel_rotation.v1";
pub const RECORD_TEST: &str = "tributary.credential.record_test.v1";
pub const RECORD_REVEAL: &str = "tributary.credential.record_reveal.v1";
pub const REENCRYPT: &str = "tributary.credential.reencrypt.v1";
pub const STORE_TOKENS: &str = "tributary.credential.store_tokens.v1";
pub const REQUIRE_REAUTHORIZATION: &str = "tributary.credential.require_reauthorization.v1";
pub const DELETE: &str = "tributary.credential.delete.v1";

pub const CREATED: &str = "tributary.credential.created.v1";
pub const UPDATED: &str = "tributary.credential.updated.v1";
pub const ROTATION_STARTED: &str = "tributary.credential.rotation_started.v1";
pub const ROTATED: &str = "tributary.credential.rotated.v1";
pub const ROTATION_CANCELED: &str = "tributary.credential.rotation_canceled.v1";
pub const TESTED: &str = "tributary.credential.tested.v1";
pub const REVEALED: &str = "tributary.credential.revealed.v1";
pub const REENCRYPTED: &str = "tributary.credential.reencrypted.v1";
pub const TOKENS_STORED: &str = "tributary.credential.tokens_stored.v1";
pub const REAUTHORIZATION_REQUIRED: &str = "tributary.credential.reauthorization_required.v1";
pub const DELETED: &str = "tributary.credential.deleted.v1";

/// Longest sealed value accepted (a service-account key of a few KiB, sealed and encoded).
pub const SEALED_MAX_CHARS: usize = 16_384;
/// Largest non-secret config, serialized.
pub const CONFIG_MAX_BYTES: usize = 16_384;

/// One secret field as the log carries it: ciphertext and what the UI may show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedField {
    /// `tv1.<data key version>.<nonce and ciphertext>`, see `tributary-vault`.
    pub sealed: String,
    /// E.g. `••••••••wxyz`: at most the last four characters of a long secret.
    pub mask: String,
}

pub type SealedFields = BTreeMap<String, SealedField>;
pub type Config = serde_json::Map<String, serde_json::Value>;

pub struct Credential;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    Active,
    /// The source refused the refresh token: someone has to authorize again.
    NeedsReauthorization,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingSecrets {
    pub version: u32,
    pub secrets: SealedFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialState {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub kind: String,
    pub name: String,
    pub config: Config,
    /// The secret version in use; starts at 1 and grows with each rotation or refresh.
    pub version: u32,
    pub secrets: SealedFields,
    pub pending: Option<PendingSecrets>,
    pub status: CredentialStatus,
    /// The highest secret version ever issued: a canceled version's number is never
    /// given to other secrets.
    pub highest_version: u32,
}

impl CredentialState {
    /// The secret set of a version, if it is the current or the pending one.
    pub fn secrets_of(&self, version: u32) -> Option<&SealedFields> {
        if version == self.version {
            Some(&self.secrets)
        } else {
            self.pending
                .as_ref()
                .filter(|p| p.version == version)
                .map(|p| &p.secrets)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateCredential {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub config: Config,
    pub secrets: SealedFields,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateCredential {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    #[serde(default)]
    pub name: Option<String>,
    /// Replaces the non-secret config as a whole.
    #[serde(default)]
    pub config: Option<Config>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RotateCredential {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    /// The complete new secret set (the API carries unchanged fields over).
    pub secrets: SealedFields,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Confirms or cancels the pending rotation of `version`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettleRotation {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordTest {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    /// The secret version the check ran with (current or pending).
    pub version: u32,
    pub ok: bool,
    pub status: String,
    pub message: String,
    #[serde(default)]
    pub identity: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordReveal {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub fields: Vec<String>,
    /// Where the request came from (client address).
    #[serde(default)]
    pub client: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Moves the ciphertext of one secret version to a newer data key; masks stay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reencrypt {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub secrets: BTreeMap<String, String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Tokens renewed by the OAuth refresher or a new authorization: they replace the
/// current secrets at once (an old access token is useless, an old single-use refresh
/// token already spent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreTokens {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    /// The version the tokens were renewed from; a refresh that lost a race to another
    /// change is refused instead of overwriting newer tokens.
    #[serde(default)]
    pub expected_version: Option<u32>,
    pub secrets: SealedFields,
    /// Non-secret fields to set (e.g. `expires_at`, `scopes`).
    #[serde(default)]
    pub config: Config,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequireReauthorization {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub expected_version: u32,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteCredential {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CredentialCommand {
    Create(CreateCredential),
    Update(UpdateCredential),
    Rotate(RotateCredential),
    ConfirmRotation(SettleRotation),
    CancelRotation(SettleRotation),
    RecordTest(RecordTest),
    RecordReveal(RecordReveal),
    Reencrypt(Reencrypt),
    StoreTokens(StoreTokens),
    RequireReauthorization(RequireReauthorization),
    Delete(DeleteCredential),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialCreated {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub kind: String,
    pub name: String,
    pub config: Config,
    pub version: u32,
    pub secrets: SealedFields,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialUpdated {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub name: String,
    pub config: Config,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationStarted {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub secrets: SealedFields,
    pub actor: String,
    pub at: DateTime<Utc>,
}

/// Why a pending secret version took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationReason {
    Tested,
    Confirmed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotated {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub previous_version: u32,
    pub reason: RotationReason,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationCanceled {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tested {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub pending: bool,
    pub ok: bool,
    pub status: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revealed {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub fields: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reencrypted {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub secrets: BTreeMap<String, String>,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensStored {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub secrets: SealedFields,
    pub config: Config,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthorizationRequired {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub version: u32,
    pub reason: String,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialDeleted {
    pub credential_id: CredentialId,
    pub org_id: OrgId,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CredentialEvent {
    Created(CredentialCreated),
    Updated(CredentialUpdated),
    RotationStarted(RotationStarted),
    Rotated(Rotated),
    RotationCanceled(RotationCanceled),
    Tested(Tested),
    Revealed(Revealed),
    Reencrypted(Reencrypted),
    TokensStored(TokensStored),
    ReauthorizationRequired(ReauthorizationRequired),
    Deleted(CredentialDeleted),
}

impl CredentialEvent {
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            CREATED => serde_json::from_slice(data).map(Self::Created),
            UPDATED => serde_json::from_slice(data).map(Self::Updated),
            ROTATION_STARTED => serde_json::from_slice(data).map(Self::RotationStarted),
            ROTATED => serde_json::from_slice(data).map(Self::Rotated),
            ROTATION_CANCELED => serde_json::from_slice(data).map(Self::RotationCanceled),
            TESTED => serde_json::from_slice(data).map(Self::Tested),
            REVEALED => serde_json::from_slice(data).map(Self::Revealed),
            REENCRYPTED => serde_json::from_slice(data).map(Self::Reencrypted),
            TOKENS_STORED => serde_json::from_slice(data).map(Self::TokensStored),
            REAUTHORIZATION_REQUIRED => {
                serde_json::from_slice(data).map(Self::ReauthorizationRequired)
            }
            DELETED => serde_json::from_slice(data).map(Self::Deleted),
            other => Err(serde::de::Error::custom(format!(
                "unknown credential event type {other}"
            ))),
        }
    }

    pub fn credential_id(&self) -> CredentialId {
        self.ids().0
    }

    pub fn org_id(&self) -> OrgId {
        self.ids().1
    }

    fn ids(&self) -> (CredentialId, OrgId) {
        match self {
            Self::Created(e) => (e.credential_id, e.org_id),
            Self::Updated(e) => (e.credential_id, e.org_id),
            Self::RotationStarted(e) => (e.credential_id, e.org_id),
            Self::Rotated(e) => (e.credential_id, e.org_id),
            Self::RotationCanceled(e) => (e.credential_id, e.org_id),
            Self::Tested(e) => (e.credential_id, e.org_id),
            Self::Revealed(e) => (e.credential_id, e.org_id),
            Self::Reencrypted(e) => (e.credential_id, e.org_id),
            Self::TokensStored(e) => (e.credential_id, e.org_id),
            Self::ReauthorizationRequired(e) => (e.credential_id, e.org_id),
            Self::Deleted(e) => (e.credential_id, e.org_id),
        }
    }

    /// Who did it: `user:<uuid>`, `key:<uuid>` or `system:<role>`.
    pub fn actor(&self) -> &str {
        match self {
            Self::Created(e) => &e.actor,
            Self::Updated(e) => &e.actor,
            Self::RotationStarted(e) => &e.actor,
            Self::Rotated(e) => &e.actor,
            Self::RotationCanceled(e) => &e.actor,
            Self::Tested(e) => &e.actor,
            Self::Revealed(e) => &e.actor,
            Self::Reencrypted(e) => &e.actor,
            Self::TokensStored(e) => &e.actor,
            Self::ReauthorizationRequired(e) => &e.actor,
            Self::Deleted(e) => &e.actor,
        }
    }

    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Created(e) => e.at,
            Self::Updated(e) => e.at,
            Self::RotationStarted(e) => e.at,
            Self::Rotated(e) => e.at,
            Self::RotationCanceled(e) => e.at,
            Self::Tested(e) => e.at,
            Self::Revealed(e) => e.at,
            Self::Reencrypted(e) => e.at,
            Self::TokensStored(e) => e.at,
            Self::ReauthorizationRequired(e) => e.at,
            Self::Deleted(e) => e.at,
        }
    }

    /// The sealed values an event carries, with the secret version they belong to.
    pub fn sealed_values(&self) -> Vec<(u32, &str, &str)> {
        fn fields(version: u32, secrets: &SealedFields) -> Vec<(u32, &str, &str)> {
            secrets
                .iter()
                .map(|(f, s)| (version, f.as_str(), s.sealed.as_str()))
                .collect()
        }
        match self {
            Self::Created(e) => fields(e.version, &e.secrets),
            Self::RotationStarted(e) => fields(e.version, &e.secrets),
            Self::TokensStored(e) => fields(e.version, &e.secrets),
            Self::Reencrypted(e) => e
                .secrets
                .iter()
                .map(|(f, s)| (e.version, f.as_str(), s.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// `user:<uuid>`, `key:<uuid>` (people and API keys) or `system:<role>` (Tributary's own
/// roles, e.g. the OAuth refresher).
pub fn validate_actor(actor: &str) -> Result<(), Rejection> {
    let ok = match actor.split_once(':') {
        Some(("user" | "key", id)) => uuid::Uuid::parse_str(id).is_ok(),
        Some(("system", role)) => {
            !role.is_empty()
                && role.len() <= 32
                && role.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "actor {actor:?} must be user:<uuid>, key:<uuid> or system:<role>"
        )))
    }
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::Invalid, reason)
}

fn validate_kind(kind: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&kind.len())
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(())
        .ok_or_else(|| invalid("kind must be 1 to 64 lowercase letters, digits or _"))
}

fn validate_field_name(field: &str) -> Result<(), Rejection> {
    let ok = (1..=64).contains(&field.len())
        && field.starts_with(|c: char| c.is_ascii_lowercase())
        && field
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    ok.then_some(()).ok_or_else(|| {
        invalid(format!(
            "secret field name {field:?} must be 1 to 64 lowercase letters, digits or _"
        ))
    })
}

fn validate_secrets(secrets: &SealedFields) -> Result<(), Rejection> {
    if secrets.is_empty() {
        return Err(invalid("a credential needs at least one secret field"));
    }
    for (field, value) in secrets {
        validate_field_name(field)?;
        crate::checks::validate_sealed(field, &value.sealed)?;
        if value.mask.chars().count() > 64 {
            return Err(invalid(format!(
                "the mask of {field} is longer than 64 characters"
            )));
        }
    }
    Ok(())
}

fn validate_config(config: &Config) -> Result<(), Rejection> {
    let size = serde_json::to_vec(config).map_or(usize::MAX, |v| v.len());
    if size > CONFIG_MAX_BYTES {
        return Err(invalid(format!(
            "config is {size} bytes; at most {CONFIG_MAX_BYTES} are accepted"
        )));
    }
    Ok(())
}

fn not_found(credential_id: CredentialId) -> Rejection {
    Rejection::new(
        RejectionCode::NotFound,
        format!("credential {credential_id} does not exist"),
    )
}

/// The live credential a command addresses. Another org's credential answers exactly
/// like a missing one.
fn live(
    state: Option<&CredentialState>,
    credential_id: CredentialId,
    org_id: OrgId,
) -> Result<&CredentialState, Rejection> {
    state
        .filter(|s| s.org_id == org_id && s.status != CredentialStatus::Deleted)
        .ok_or_else(|| not_found(credential_id))
}

impl Aggregate for Credential {
    const KIND: &'static str = "credential";
    const COMMAND_TYPES: &'static [&'static str] = &[
        CREATE,
        UPDATE,
        ROTATE,
        CONFIRM_ROTATION,
        CANCEL_ROTATION,
        RECORD_TEST,
        RECORD_REVEAL,
        REENCRYPT,
        STORE_TOKENS,
        REQUIRE_REAUTHORIZATION,
        DELETE,
    ];

    type State = CredentialState;
    type Command = CredentialCommand;
    type Event = CredentialEvent;

    fn parse_command(
        command_type: &str,
        data: serde_json::Value,
    ) -> Result<Self::Command, Rejection> {
        use CredentialCommand as C;
        match command_type {
            CREATE => parse_data(data).map(C::Create),
            UPDATE => parse_data(data).map(C::Update),
            ROTATE => parse_data(data).map(C::Rotate),
            CONFIRM_ROTATION => parse_data(data).map(C::ConfirmRotation),
            CANCEL_ROTATION => parse_data(data).map(C::CancelRotation),
            RECORD_TEST => parse_data(data).map(C::RecordTest),
            RECORD_REVEAL => parse_data(data).map(C::RecordReveal),
            REENCRYPT => parse_data(data).map(C::Reencrypt),
            STORE_TOKENS => parse_data(data).map(C::StoreTokens),
            REQUIRE_REAUTHORIZATION => parse_data(data).map(C::RequireReauthorization),
            DELETE => parse_data(data).map(C::Delete),
            other => Err(Rejection::new(
                RejectionCode::UnknownType,
                format!("the credential aggregate has no command {other}"),
            )),
        }
    }

    fn target(command: &Self::Command) -> String {
        command_ids(command).0.to_string()
    }

    fn org_of(command: &Self::Command) -> Option<OrgId> {
        Some(command_ids(command).1)
    }

    fn decide(
        state: Option<&CredentialState>,
        command: &CredentialCommand,
    ) -> Result<Decision<CredentialEvent>, Rejection> {
        use CredentialCommand as C;
        use CredentialEvent as E;
        validate_actor(command_actor(command))?;
        let done = |event: CredentialEvent| Ok(Decision::done(vec![event]));
        match command {
            C::Create(c) => {
                validate_kind(&c.kind)?;
                validate_name(&c.name)?;
                validate_config(&c.config)?;
                validate_secrets(&c.secrets)?;
                match state {
                    None => done(E::Created(CredentialCreated {
                        credential_id: c.credential_id,
                        org_id: c.org_id,
                        kind: c.kind.clone(),
                        name: c.name.trim().to_owned(),
                        config: c.config.clone(),
                        version: 1,
                        secrets: c.secrets.clone(),
                        actor: c.actor.clone(),
                        at: c.at,
                    })),
                    // The same creation retried under a new command id.
                    Some(s)
                        if s.org_id == c.org_id
                            && s.kind == c.kind
                            && s.version == 1
                            && s.secrets == c.secrets =>
                    {
                        Ok(Decision::done(Vec::new()))
                    }
                    Some(_) => Err(Rejection::new(
                        RejectionCode::Conflict,
                        format!(
                            "credential {} already exists; choose a new id",
                            c.credential_id
                        ),
                    )),
                }
            }
            C::Update(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                let name = match &c.name {
                    Some(n) => {
                        validate_name(n)?;
                        n.trim().to_owned()
                    }
                    None => s.name.clone(),
                };
                let config = c.config.clone().unwrap_or_else(|| s.config.clone());
                validate_config(&config)?;
                if name == s.name && config == s.config {
                    return Ok(Decision::done(Vec::new()));
                }
                done(E::Updated(CredentialUpdated {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    name,
                    config,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::Rotate(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                validate_secrets(&c.secrets)?;
                done(E::RotationStarted(RotationStarted {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: next_version(s),
                    secrets: c.secrets.clone(),
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::ConfirmRotation(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                pending_of(s, c.version)?;
                done(E::Rotated(Rotated {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: c.version,
                    previous_version: s.version,
                    reason: RotationReason::Confirmed,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::CancelRotation(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                pending_of(s, c.version)?;
                done(E::RotationCanceled(RotationCanceled {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: c.version,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::RecordTest(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                let pending = s.pending.as_ref().is_some_and(|p| p.version == c.version);
                if c.version != s.version && !pending {
                    return Err(stale(c.version, s));
                }
                if c.status.is_empty() || c.status.len() > 32 || c.message.chars().count() > 1000 {
                    return Err(invalid(
                        "a test needs a status of at most 32 characters and a message of at \
                         most 1000",
                    ));
                }
                let mut events = vec![E::Tested(Tested {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: c.version,
                    pending,
                    ok: c.ok,
                    status: c.status.clone(),
                    message: c.message.clone(),
                    identity: c.identity.clone(),
                    actor: c.actor.clone(),
                    at: c.at,
                })];
                if pending && c.ok {
                    events.push(E::Rotated(Rotated {
                        credential_id: c.credential_id,
                        org_id: c.org_id,
                        version: c.version,
                        previous_version: s.version,
                        reason: RotationReason::Tested,
                        actor: c.actor.clone(),
                        at: c.at,
                    }));
                }
                Ok(Decision::done(events))
            }
            C::RecordReveal(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                let secrets = s.secrets_of(c.version).ok_or_else(|| stale(c.version, s))?;
                if let Some(unknown) = c.fields.iter().find(|f| !secrets.contains_key(*f)) {
                    return Err(invalid(format!(
                        "the credential has no secret field {unknown}"
                    )));
                }
                done(E::Revealed(Revealed {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: c.version,
                    fields: c.fields.clone(),
                    client: c.client.clone(),
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::Reencrypt(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                let secrets = s.secrets_of(c.version).ok_or_else(|| stale(c.version, s))?;
                let same_fields = secrets.len() == c.secrets.len()
                    && secrets.keys().all(|f| c.secrets.contains_key(f));
                if !same_fields {
                    return Err(Rejection::new(
                        RejectionCode::Conflict,
                        "re-encryption must carry exactly the fields of the version it moves",
                    ));
                }
                for (field, sealed) in &c.secrets {
                    crate::checks::validate_sealed(field, sealed)?;
                }
                done(E::Reencrypted(Reencrypted {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: c.version,
                    secrets: c.secrets.clone(),
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::StoreTokens(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                if let Some(expected) = c.expected_version
                    && expected != s.version
                {
                    return Err(stale(expected, s));
                }
                validate_secrets(&c.secrets)?;
                validate_config(&c.config)?;
                let mut config = s.config.clone();
                config.extend(c.config.clone());
                validate_config(&config)?;
                done(E::TokensStored(TokensStored {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: next_version(s),
                    secrets: c.secrets.clone(),
                    config,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::RequireReauthorization(c) => {
                let s = live(state, c.credential_id, c.org_id)?;
                if c.expected_version != s.version {
                    return Err(stale(c.expected_version, s));
                }
                if s.status == CredentialStatus::NeedsReauthorization {
                    return Ok(Decision::done(Vec::new()));
                }
                done(E::ReauthorizationRequired(ReauthorizationRequired {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    version: s.version,
                    reason: c.reason.chars().take(1000).collect(),
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
            C::Delete(c) => {
                live(state, c.credential_id, c.org_id)?;
                done(E::Deleted(CredentialDeleted {
                    credential_id: c.credential_id,
                    org_id: c.org_id,
                    actor: c.actor.clone(),
                    at: c.at,
                }))
            }
        }
    }

    fn evolve(state: Option<CredentialState>, event: &CredentialEvent) -> CredentialState {
        use CredentialEvent as E;
        let Some(mut s) = state else {
            return match event {
                E::Created(e) => CredentialState {
                    credential_id: e.credential_id,
                    org_id: e.org_id,
                    kind: e.kind.clone(),
                    name: e.name.clone(),
                    config: e.config.clone(),
                    version: e.version,
                    secrets: e.secrets.clone(),
                    pending: None,
                    status: CredentialStatus::Active,
                    highest_version: e.version,
                },
                // Any other first event means the history is incomplete; keep what it says.
                other => CredentialState {
                    credential_id: other.credential_id(),
                    org_id: other.org_id(),
                    kind: String::new(),
                    name: String::new(),
                    config: Config::new(),
                    version: 0,
                    secrets: SealedFields::new(),
                    pending: None,
                    status: if matches!(other, E::Deleted(_)) {
                        CredentialStatus::Deleted
                    } else {
                        CredentialStatus::Active
                    },
                    highest_version: 0,
                },
            };
        };
        match event {
            E::Created(e) => {
                s.kind.clone_from(&e.kind);
                s.name.clone_from(&e.name);
                s.config.clone_from(&e.config);
                s.version = e.version;
                s.secrets.clone_from(&e.secrets);
            }
            E::Updated(e) => {
                s.name.clone_from(&e.name);
                s.config.clone_from(&e.config);
            }
            E::RotationStarted(e) => {
                s.highest_version = s.highest_version.max(e.version);
                s.pending = Some(PendingSecrets {
                    version: e.version,
                    secrets: e.secrets.clone(),
                });
            }
            E::Rotated(e) => {
                if let Some(p) = s.pending.take_if(|p| p.version == e.version) {
                    s.version = p.version;
                    s.secrets = p.secrets;
                }
            }
            E::RotationCanceled(e) => {
                s.pending.take_if(|p| p.version == e.version);
            }
            E::Tested(_) | E::Revealed(_) => {}
            E::Reencrypted(e) => {
                let target = if e.version == s.version {
                    Some(&mut s.secrets)
                } else {
                    s.pending
                        .as_mut()
                        .filter(|p| p.version == e.version)
                        .map(|p| &mut p.secrets)
                };
                if let Some(secrets) = target {
                    for (field, sealed) in &e.secrets {
                        if let Some(slot) = secrets.get_mut(field) {
                            slot.sealed.clone_from(sealed);
                        }
                    }
                }
            }
            E::TokensStored(e) => {
                s.highest_version = s.highest_version.max(e.version);
                s.version = e.version;
                s.secrets.clone_from(&e.secrets);
                s.config.clone_from(&e.config);
                s.pending = None;
                s.status = CredentialStatus::Active;
            }
            E::ReauthorizationRequired(_) => s.status = CredentialStatus::NeedsReauthorization,
            E::Deleted(_) => {
                s.status = CredentialStatus::Deleted;
                s.secrets.clear();
                s.pending = None;
            }
        }
        s
    }

    fn event_type(event: &CredentialEvent) -> &'static str {
        use CredentialEvent as E;
        match event {
            E::Created(_) => CREATED,
            E::Updated(_) => UPDATED,
            E::RotationStarted(_) => ROTATION_STARTED,
            E::Rotated(_) => ROTATED,
            E::RotationCanceled(_) => ROTATION_CANCELED,
            E::Tested(_) => TESTED,
            E::Revealed(_) => REVEALED,
            E::Reencrypted(_) => REENCRYPTED,
            E::TokensStored(_) => TOKENS_STORED,
            E::ReauthorizationRequired(_) => REAUTHORIZATION_REQUIRED,
            E::Deleted(_) => DELETED,
        }
    }
}

/// A new secret version is above every version issued before.
fn next_version(s: &CredentialState) -> u32 {
    s.highest_version.max(s.version) + 1
}

fn pending_of(s: &CredentialState, version: u32) -> Result<&PendingSecrets, Rejection> {
    s.pending
        .as_ref()
        .filter(|p| p.version == version)
        .ok_or_else(|| {
            Rejection::new(
                RejectionCode::Conflict,
                format!(
                    "credential {} has no pending rotation to version {version}",
                    s.credential_id
                ),
            )
        })
}

fn stale(version: u32, s: &CredentialState) -> Rejection {
    Rejection::new(
        RejectionCode::Conflict,
        format!(
            "secret version {version} of credential {} is neither current ({}) nor pending; \
             it changed meanwhile, read it again",
            s.credential_id, s.version
        ),
    )
}

fn command_ids(command: &CredentialCommand) -> (CredentialId, OrgId) {
    use CredentialCommand as C;
    match command {
        C::Create(c) => (c.credential_id, c.org_id),
        C::Update(c) => (c.credential_id, c.org_id),
        C::Rotate(c) => (c.credential_id, c.org_id),
        C::ConfirmRotation(c) | C::CancelRotation(c) => (c.credential_id, c.org_id),
        C::RecordTest(c) => (c.credential_id, c.org_id),
        C::RecordReveal(c) => (c.credential_id, c.org_id),
        C::Reencrypt(c) => (c.credential_id, c.org_id),
        C::StoreTokens(c) => (c.credential_id, c.org_id),
        C::RequireReauthorization(c) => (c.credential_id, c.org_id),
        C::Delete(c) => (c.credential_id, c.org_id),
    }
}

fn command_actor(command: &CredentialCommand) -> &str {
    use CredentialCommand as C;
    match command {
        C::Create(c) => &c.actor,
        C::Update(c) => &c.actor,
        C::Rotate(c) => &c.actor,
        C::ConfirmRotation(c) | C::CancelRotation(c) => &c.actor,
        C::RecordTest(c) => &c.actor,
        C::RecordReveal(c) => &c.actor,
        C::Reencrypt(c) => &c.actor,
        C::StoreTokens(c) => &c.actor,
        C::RequireReauthorization(c) => &c.actor,
        C::Delete(c) => &c.actor,
    }
}
