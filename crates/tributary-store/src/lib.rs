//! Postgres: the pool, migrations, projections (versioned read-model tables fed from the
//! log, with their offsets in the same transaction) and the queries the API serves.

pub mod accounts;
pub mod catalog;
pub mod credentials;
pub mod db;
pub mod dead_letters;
pub mod documents;
pub mod error;
pub mod notify;
pub mod oauth;
pub mod projection;
pub mod queries;
pub mod sync_runs;
pub mod tenant;
pub mod vault;

pub use db::{Db, connect, migrate};
pub use error::{Error, Result};
pub use projection::{Projection, Registry};
