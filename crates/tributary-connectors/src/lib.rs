//! Connectors to the sources Tributary keeps retrieval systems fed from: GitHub, Slack,
//! Confluence and Jira, Notion, Google Drive, web sites.
//!
//! For now this crate holds [`credentials`]: the credential kinds a connection can use
//! (their schemas, validation and secret fields) and the check that tries a credential
//! against its source. A check result is safe to record in an event: it never contains a
//! secret.
//!
//! ```
//! use tributary_connectors::credentials::Kinds;
//!
//! let github = Kinds::builtin().get("github_token").unwrap();
//! assert_eq!(github.secret_fields(), ["token"]);
//! let value = serde_json::json!({ "token": "ghp_example", "extra": 1 });
//! let errors = github.validate(&value).unwrap_err();
//! assert_eq!(errors[0].pointer, "/extra");
//! ```

pub mod credentials;
pub mod source;
