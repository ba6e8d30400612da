//! What the org aggregate records. Decoded by CloudEvents type, never by shape.

use super::{
    ALLOWED_DOMAINS_SET, API_KEY_CREATED, API_KEY_REVOKED, CREATED, DELETED, INVITATION_ACCEPTED,
    INVITATION_CREATED, INVITATION_REVOKED, MEMBER_ADDED, MEMBER_DEACTIVATED, MEMBER_REACTIVATED,
    MEMBER_REMOVED, MEMBER_ROLE_CHANGED, RENAMED,
};
use crate::ids::{ApiKeyId, InvitationId, OrgId, UserId};
use crate::role::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OrgEvent {
    Created(OrgCreated),
    Renamed(OrgRenamed),
    Deleted(OrgDeleted),
    MemberAdded(MemberAdded),
    MemberRoleChanged(MemberRoleChanged),
    MemberDeactivated(MemberChanged),
    MemberReactivated(MemberChanged),
    MemberRemoved(MemberChanged),
    InvitationCreated(InvitationCreated),
    InvitationAccepted(InvitationAccepted),
    InvitationRevoked(InvitationRevoked),
    AllowedDomainsSet(AllowedDomainsSet),
    ApiKeyCreated(ApiKeyCreated),
    ApiKeyRevoked(ApiKeyRevoked),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgCreated {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgRenamed {
    pub org_id: OrgId,
    pub name: String,
    pub previous_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgDeleted {
    pub org_id: OrgId,
    pub slug: String,
}

/// How a member came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinedVia {
    Founder,
    Invitation,
    Domain,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberAdded {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub email_index: String,
    pub role: Role,
    pub via: JoinedVia,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invitation_id: Option<InvitationId>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRoleChanged {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub from: Role,
    pub to: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

/// A member was deactivated, reactivated or removed (the type says which).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberChanged {
    pub org_id: OrgId,
    pub user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationCreated {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
    pub email_index: String,
    /// Sealed under the org's key.
    pub email: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
    pub token_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationAccepted {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
    pub user_id: UserId,
    pub email_index: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationRevoked {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowedDomainsSet {
    pub org_id: OrgId,
    /// Normalized, deduplicated and sorted; empty allows none.
    pub domains: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreated {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    pub name: String,
    pub role: Role,
    pub prefix: String,
    pub secret_hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyRevoked {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl OrgEvent {
    /// Decodes an event's data by its CloudEvents type.
    pub fn decode(event_type: &str, data: &[u8]) -> Result<Self, serde_json::Error> {
        match event_type {
            CREATED => serde_json::from_slice(data).map(Self::Created),
            RENAMED => serde_json::from_slice(data).map(Self::Renamed),
            DELETED => serde_json::from_slice(data).map(Self::Deleted),
            MEMBER_ADDED => serde_json::from_slice(data).map(Self::MemberAdded),
            MEMBER_ROLE_CHANGED => serde_json::from_slice(data).map(Self::MemberRoleChanged),
            MEMBER_DEACTIVATED => serde_json::from_slice(data).map(Self::MemberDeactivated),
            MEMBER_REACTIVATED => serde_json::from_slice(data).map(Self::MemberReactivated),
            MEMBER_REMOVED => serde_json::from_slice(data).map(Self::MemberRemoved),
            INVITATION_CREATED => serde_json::from_slice(data).map(Self::InvitationCreated),
            INVITATION_ACCEPTED => serde_json::from_slice(data).map(Self::InvitationAccepted),
            INVITATION_REVOKED => serde_json::from_slice(data).map(Self::InvitationRevoked),
            ALLOWED_DOMAINS_SET => serde_json::from_slice(data).map(Self::AllowedDomainsSet),
            API_KEY_CREATED => serde_json::from_slice(data).map(Self::ApiKeyCreated),
            API_KEY_REVOKED => serde_json::from_slice(data).map(Self::ApiKeyRevoked),
            other => Err(serde::de::Error::custom(format!(
                "unknown org event type {other}"
            ))),
        }
    }

    /// CloudEvents type of the event.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Created(_) => CREATED,
            Self::Renamed(_) => RENAMED,
            Self::Deleted(_) => DELETED,
            Self::MemberAdded(_) => MEMBER_ADDED,
            Self::MemberRoleChanged(_) => MEMBER_ROLE_CHANGED,
            Self::MemberDeactivated(_) => MEMBER_DEACTIVATED,
            Self::MemberReactivated(_) => MEMBER_REACTIVATED,
            Self::MemberRemoved(_) => MEMBER_REMOVED,
            Self::InvitationCreated(_) => INVITATION_CREATED,
            Self::InvitationAccepted(_) => INVITATION_ACCEPTED,
            Self::InvitationRevoked(_) => INVITATION_REVOKED,
            Self::AllowedDomainsSet(_) => ALLOWED_DOMAINS_SET,
            Self::ApiKeyCreated(_) => API_KEY_CREATED,
            Self::ApiKeyRevoked(_) => API_KEY_REVOKED,
        }
    }

    pub fn org_id(&self) -> OrgId {
        match self {
            Self::Created(e) => e.org_id,
            Self::Renamed(e) => e.org_id,
            Self::Deleted(e) => e.org_id,
            Self::MemberAdded(e) => e.org_id,
            Self::MemberRoleChanged(e) => e.org_id,
            Self::MemberDeactivated(e) | Self::MemberReactivated(e) | Self::MemberRemoved(e) => {
                e.org_id
            }
            Self::InvitationCreated(e) => e.org_id,
            Self::InvitationAccepted(e) => e.org_id,
            Self::InvitationRevoked(e) => e.org_id,
            Self::AllowedDomainsSet(e) => e.org_id,
            Self::ApiKeyCreated(e) => e.org_id,
            Self::ApiKeyRevoked(e) => e.org_id,
        }
    }
}
