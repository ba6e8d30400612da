//! The pure core of Tributary: ids, commands, events and the aggregates that decide on
//! them. Nothing here does I/O; the processor in `tributary-log` feeds commands in and
//! writes what comes out.

pub mod aggregate;
mod checks;
pub mod credential;
pub mod document;
pub mod email;
pub mod ids;
pub mod org;
pub mod outcome;
pub mod profile;
pub mod role;
pub mod schema;
pub mod session;

/// Security events that are no aggregate's decision: the API writes them itself.
pub mod security {
    /// A sign-in failed or was throttled (`<prefix>.security.events`).
    pub const LOGIN_FAILED: &str = "tributary.security.login_failed.v1";
    /// An OAuth authorization failed (denied, bad state, token endpoint error).
    pub const OAUTH_FAILED: &str = "tributary.security.oauth_failed.v1";
}
pub mod slug;
pub mod sync;
pub mod target;
pub mod user;

/// Key events: no aggregate's decision either. The vault writes them to its outbox in
/// the transaction that changes a key, and the keeper relays them to
/// `<prefix>.vault.events`. They never carry key material.
pub mod vault {
    pub const DATA_KEY_CREATED: &str = "tributary.vault.data_key_created.v1";
    pub const KEK_ROTATED: &str = "tributary.vault.kek_rotated.v1";
    pub const SHREDDED: &str = "tributary.vault.shredded.v1";
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;

pub use aggregate::{Aggregate, Decision, FollowUp, Rejection, RejectionCode};
pub use email::{email_domain, normalize_email};
pub use ids::{
    ApiKeyId, CommandId, CredentialId, EventId, InvitationId, OrgId, ProfileId, SessionId,
    SyncRunId, TargetId, UserId,
};
pub use outcome::{CommandOutcome, OutcomeStatus};
pub use role::Role;

/// Every aggregate kind; each has `<prefix>.<kind>.commands|events|state` topics.
pub const AGGREGATES: &[&str] = &[
    org::Org::KIND,
    slug::Slug::KIND,
    email::Email::KIND,
    user::User::KIND,
    session::Session::KIND,
    credential::Credential::KIND,
    target::Target::KIND,
    profile::Profile::KIND,
    sync::Sync::KIND,
];
