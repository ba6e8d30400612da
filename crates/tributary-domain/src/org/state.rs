//! The org as its events leave it. Maps are ordered so snapshots are deterministic.

use super::event::{JoinedVia, OrgEvent};
use crate::ids::{ApiKeyId, InvitationId, OrgId, UserId};
use crate::role::Role;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrgState {
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub deleted: bool,
    // Defaults keep snapshots written before members existed readable.
    #[serde(default)]
    pub members: BTreeMap<UserId, Member>,
    #[serde(default)]
    pub invitations: BTreeMap<InvitationId, Invitation>,
    /// Normalized and sorted.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    #[serde(default)]
    pub api_keys: BTreeMap<ApiKeyId, ApiKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub email_index: String,
    pub role: Role,
    pub active: bool,
    pub via: JoinedVia,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Invitation {
    pub email_index: String,
    pub role: Role,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub accepted_by: Option<UserId>,
    #[serde(default)]
    pub revoked: bool,
}

/// What the org needs to decide about a key; the secret's hash lives in the read model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    pub prefix: String,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub revoked: bool,
}

impl OrgState {
    pub fn new(id: OrgId, slug: String, name: String) -> Self {
        Self {
            id,
            slug,
            name,
            deleted: false,
            members: BTreeMap::new(),
            invitations: BTreeMap::new(),
            allowed_domains: Vec::new(),
            api_keys: BTreeMap::new(),
        }
    }

    /// How many members are admins and active; the org never goes below one.
    pub fn active_admins(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.active && m.role.is_admin())
            .count()
    }

    /// Whether taking this member's active admin rights away would leave no active admin.
    pub fn is_last_active_admin(&self, user_id: &UserId) -> bool {
        self.members
            .get(user_id)
            .is_some_and(|m| m.active && m.role.is_admin())
            && self.active_admins() == 1
    }

    pub fn member_with_email(&self, email_index: &str) -> Option<(&UserId, &Member)> {
        self.members
            .iter()
            .find(|(_, m)| m.email_index == email_index)
    }

    pub(super) fn apply(mut self, event: &OrgEvent) -> Self {
        match event {
            OrgEvent::Created(e) => return Self::new(e.org_id, e.slug.clone(), e.name.clone()),
            OrgEvent::Renamed(e) => self.name = e.name.clone(),
            OrgEvent::Deleted(e) => {
                self.slug = e.slug.clone();
                self.deleted = true;
            }
            OrgEvent::MemberAdded(e) => {
                self.members.insert(
                    e.user_id,
                    Member {
                        email_index: e.email_index.clone(),
                        role: e.role,
                        active: true,
                        via: e.via,
                    },
                );
            }
            OrgEvent::MemberRoleChanged(e) => {
                if let Some(m) = self.members.get_mut(&e.user_id) {
                    m.role = e.to;
                }
            }
            OrgEvent::MemberDeactivated(e) => {
                if let Some(m) = self.members.get_mut(&e.user_id) {
                    m.active = false;
                }
            }
            OrgEvent::MemberReactivated(e) => {
                if let Some(m) = self.members.get_mut(&e.user_id) {
                    m.active = true;
                }
            }
            OrgEvent::MemberRemoved(e) => {
                self.members.remove(&e.user_id);
            }
            OrgEvent::InvitationCreated(e) => {
                self.invitations.insert(
                    e.invitation_id,
                    Invitation {
                        email_index: e.email_index.clone(),
                        role: e.role,
                        token_hash: e.token_hash.clone(),
                        expires_at: e.expires_at,
                        accepted_by: None,
                        revoked: false,
                    },
                );
            }
            OrgEvent::InvitationAccepted(e) => {
                if let Some(i) = self.invitations.get_mut(&e.invitation_id) {
                    i.accepted_by = Some(e.user_id);
                }
            }
            OrgEvent::InvitationRevoked(e) => {
                if let Some(i) = self.invitations.get_mut(&e.invitation_id) {
                    i.revoked = true;
                }
            }
            OrgEvent::AllowedDomainsSet(e) => self.allowed_domains = e.domains.clone(),
            OrgEvent::ApiKeyCreated(e) => {
                self.api_keys.insert(
                    e.key_id,
                    ApiKey {
                        name: e.name.clone(),
                        role: e.role,
                        prefix: e.prefix.clone(),
                        expires_at: e.expires_at,
                        revoked: false,
                    },
                );
            }
            OrgEvent::ApiKeyRevoked(e) => {
                if let Some(k) = self.api_keys.get_mut(&e.key_id) {
                    k.revoked = true;
                }
            }
        }
        self
    }
}
