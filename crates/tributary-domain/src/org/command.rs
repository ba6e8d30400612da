//! The commands the org aggregate decides on.

use crate::ids::{ApiKeyId, InvitationId, OrgId, UserId};
use crate::role::Role;
use crate::user::NewUser;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisterOrg {
    pub org_id: OrgId,
    pub slug: String,
    pub name: String,
    /// Present when the org is created by a sign-up: its first admin.
    #[serde(default)]
    pub founder: Option<Founder>,
    /// Present when a signed-in user creates the org: its first admin, an existing
    /// user (nothing to register, nothing to give back on refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<ExistingUser>,
}

/// A registered user named by a command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExistingUser {
    pub user_id: UserId,
    pub email_index: String,
}

/// The user who signs up by creating an org.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Founder {
    pub user_id: UserId,
    pub email_index: String,
    /// Sealed under the founder's key, like `name` and `password_hash`.
    pub email: String,
    pub name: String,
    pub password_hash: String,
}

impl Founder {
    pub fn new_user(&self) -> NewUser {
        NewUser {
            email: self.email.clone(),
            name: self.name.clone(),
            password_hash: self.password_hash.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenameOrg {
    pub org_id: OrgId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteOrg {
    pub org_id: OrgId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invite {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
    /// Blind index of the invitee's normalized address.
    pub email_index: String,
    /// The address, sealed under the org's key (the invitee is no user yet); shown in
    /// the invitation list, and shredded with the org.
    pub email: String,
    pub role: Role,
    /// Hash of the token mailed to the invitee; the token itself never travels.
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AcceptInvitation {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
    pub token_hash: String,
    pub user_id: UserId,
    pub email_index: String,
    /// When the invitee presented the token, set by the gateway.
    pub at: DateTime<Utc>,
    /// Present when the invitee signs up in the same step.
    #[serde(default)]
    pub new_user: Option<NewUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeInvitation {
    pub org_id: OrgId,
    pub invitation_id: InvitationId,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JoinByDomain {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub email_index: String,
    /// The address's domain, which the org must allow.
    pub email_domain: String,
    /// Present when the user signs up in the same step.
    #[serde(default)]
    pub new_user: Option<NewUser>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRole {
    pub org_id: OrgId,
    pub user_id: UserId,
    pub role: Role,
    #[serde(default)]
    pub actor: Option<String>,
}

/// Deactivate, reactivate or remove one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberCommand {
    pub org_id: OrgId,
    pub user_id: UserId,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetAllowedDomains {
    pub org_id: OrgId,
    pub domains: Vec<String>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateApiKey {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    pub name: String,
    pub role: Role,
    /// The visible start of the key, to tell keys apart in lists and logs.
    pub prefix: String,
    /// Hash of the secret; the API shows the key once and never sends it.
    pub secret_hash: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RevokeApiKey {
    pub org_id: OrgId,
    pub key_id: ApiKeyId,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OrgCommand {
    /// Sent by the slug aggregate once the slug is reserved for this org.
    Register(RegisterOrg),
    Rename(RenameOrg),
    Delete(DeleteOrg),
    Invite(Invite),
    AcceptInvitation(AcceptInvitation),
    RevokeInvitation(RevokeInvitation),
    JoinByDomain(JoinByDomain),
    ChangeRole(ChangeRole),
    DeactivateMember(MemberCommand),
    ReactivateMember(MemberCommand),
    RemoveMember(MemberCommand),
    SetAllowedDomains(SetAllowedDomains),
    CreateApiKey(CreateApiKey),
    RevokeApiKey(RevokeApiKey),
}

impl OrgCommand {
    pub fn org_id(&self) -> OrgId {
        match self {
            Self::Register(c) => c.org_id,
            Self::Rename(c) => c.org_id,
            Self::Delete(c) => c.org_id,
            Self::Invite(c) => c.org_id,
            Self::AcceptInvitation(c) => c.org_id,
            Self::RevokeInvitation(c) => c.org_id,
            Self::JoinByDomain(c) => c.org_id,
            Self::ChangeRole(c) => c.org_id,
            Self::DeactivateMember(c) | Self::ReactivateMember(c) | Self::RemoveMember(c) => {
                c.org_id
            }
            Self::SetAllowedDomains(c) => c.org_id,
            Self::CreateApiKey(c) => c.org_id,
            Self::RevokeApiKey(c) => c.org_id,
        }
    }
}
