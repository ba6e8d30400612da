//! Newtypes for identifiers, so an org id can never be passed where a command id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }
    };
}

uuid_id!(
    /// An organization: the tenant every other record belongs to.
    OrgId
);
uuid_id!(
    /// The id of a command (its CloudEvents `id`); repeated ids are answered with the first outcome.
    CommandId
);
uuid_id!(
    /// The id of an event (its CloudEvents `id`).
    EventId
);
uuid_id!(
    /// A person who signs in; one user can be a member of many orgs.
    UserId
);
uuid_id!(
    /// A refresh-token session: one family of rotating refresh tokens.
    SessionId
);
uuid_id!(
    /// An invitation to join an org.
    InvitationId
);
uuid_id!(
    /// An API key of an org, for service accounts and upstream systems.
    ApiKeyId
);
uuid_id!(
    /// A credential of an org: the secrets a connector or destination signs in with.
    CredentialId
);
uuid_id!(
    /// A configured destination of an org: a destination kind, its config and credential.
    TargetId
);
uuid_id!(
    /// A profile (a connection): a source, its schedule and the targets it feeds.
    ProfileId
);
uuid_id!(
    /// One sync run of a profile.
    SyncRunId
);
