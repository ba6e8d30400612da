//! Who a data key belongs to.

use std::fmt;

use uuid::Uuid;

/// What a data key protects: an org's secrets or one user's personal data.
///
/// Keys are per scope so that one scope can be crypto-shredded without touching the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyScope {
    Org(Uuid),
    User(Uuid),
    /// Keys of the installation itself, such as the blind-index key; never shredded.
    System(Uuid),
}

impl KeyScope {
    /// `"org"` or `"user"`: stable, part of the associated data, so never rename these.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Org(_) => "org",
            Self::User(_) => "user",
            Self::System(_) => "system",
        }
    }

    pub fn id(&self) -> Uuid {
        match self {
            Self::Org(id) | Self::User(id) | Self::System(id) => *id,
        }
    }
}

/// `org:<uuid>` or `user:<uuid>`, for logs and error messages.
impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_id() {
        let id = Uuid::new_v4();
        assert_eq!(KeyScope::Org(id).kind(), "org");
        assert_eq!(KeyScope::User(id).kind(), "user");
        assert_eq!(KeyScope::User(id).id(), id);
        assert_eq!(KeyScope::Org(id).to_string(), format!("org:{id}"));
    }
}
