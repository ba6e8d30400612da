use crate::error::{Error, Result, pg};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// A pool of connections to one database.
pub type Db = Pool;

pub fn connect(url: &str, max_size: usize) -> Result<Db> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Url(e.to_string()))?;
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .build()
        .map_err(|e| Error::Url(e.to_string()))
}

/// Applies the numbered SQL files in `migrations/` that have not run yet.
pub async fn migrate(url: &str) -> Result<Vec<String>> {
    let (mut client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg("connecting to run migrations"))?;
    let driver = tokio::spawn(connection);
    let report = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .map_err(|e| Error::Migration(e.to_string()))?;
    // Projection tables are versioned and created here too, so the views the API reads
    // exist before any projector has run.
    for projection in crate::Projection::ALL {
        crate::Registry::ensure(&client, projection).await?;
    }
    drop(client);
    let _ = driver.await;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect())
}
