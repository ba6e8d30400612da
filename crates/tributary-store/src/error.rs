pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error while {action}: {}", describe(.source))]
    Postgres {
        action: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("no database connection available: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error(
        "the database URL is not valid: {0}; expected postgres://user:password@host:port/database"
    )]
    Url(String),
    #[error("running migrations failed: {0}")]
    Migration(String),
    #[error(
        "unknown projection {0:?}; known projections: identity, orgs, commands, security, credentials, audit, sync_runs, catalog, dead_letters, documents"
    )]
    UnknownProjection(String),
    #[error("event {event_id} of type {ty} could not be decoded: {reason}")]
    Decode {
        event_id: String,
        ty: String,
        reason: String,
    },
}

pub(crate) fn pg(action: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Error {
    move |source| Error::Postgres { action, source }
}

/// tokio-postgres shows a server error as just "db error"; say what the server said.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({}: {})", e, db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}
