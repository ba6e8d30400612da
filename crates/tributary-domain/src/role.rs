//! What a member or an API key may do in an org.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Roles are ordered: an admin may do what a curator may, a curator what a member may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages members, keys, settings and everything a curator does.
    Admin,
    /// Manages connectors, destinations and syncs.
    Curator,
    /// Reads what the org holds.
    Member,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Curator, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Curator => "curator",
            Self::Member => "member",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Admin => 2,
            Self::Curator => 1,
            Self::Member => 0,
        }
    }

    /// Whether this role grants everything `other` grants.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    pub fn is_admin(self) -> bool {
        self == Self::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a role; use admin, curator or member")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Admin.at_least(Role::Curator));
        assert!(Role::Curator.at_least(Role::Curator));
        assert!(!Role::Member.at_least(Role::Curator));
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
