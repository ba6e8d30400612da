//! Projections: versioned read-model tables built from the log.
//!
//! Each projection has tables `<name>_v<N>` and a view `<name>` on the active version.
//! The projector applies a batch and the batch's offsets in one transaction, under a
//! shared lock on the projection's registry row; a rebuild fills version N+1 and swaps
//! the view under an exclusive lock on the same row, so the live projector sees the
//! swap between two batches and continues from the new version's offsets.

mod catalog;
mod commands;
mod credentials;
mod dead_letters;
mod documents;
mod identity;
mod orgs;
mod security;
mod sync_runs;

pub use credentials::{AuditRecord, audit_entry};

use crate::error::{Error, Result, pg};
use std::collections::{BTreeSet, HashMap};
use tokio_postgres::{GenericClient, Transaction};
use tributary_log::{Envelope, Topics};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Projection {
    Orgs,
    Commands,
    /// Users, memberships, invitations, API keys, sessions, allowed domains.
    Identity,
    /// Who did what to accounts, members, keys and sessions, per org.
    Security,
    /// Credentials with their sealed secrets and masks (never plaintext).
    Credentials,
    /// Who did what to credentials and keys.
    Audit,
    /// Sync runs with their state, counts, progress and per-document failures.
    SyncRuns,
    /// Targets and profiles: what each org syncs, from where, to where, and when.
    Catalog,
    /// Document dead letters with their context, and whether they were redriven.
    DeadLetters,
    /// Every document a profile's runs wrote, and whether it was deleted: what pruning
    /// compares with the source's id listing.
    Documents,
}

/// One read-model table of a projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Table {
    /// The view the API reads; versions are `<name>_v<N>`.
    pub name: &'static str,
    /// Which rows `tributary_app` (tenant reads) may see: a `USING` expression, where
    /// `{v}` stands for the version (to name sibling tables). `None`: no row at all, for
    /// tables only system lookups read.
    pub policy: Option<&'static str>,
    /// `CREATE TABLE IF NOT EXISTS {table} ...`, with `{table}` for the versioned name.
    pub ddl: &'static str,
}

impl Table {
    pub fn versioned(&self, version: i32) -> String {
        format!("{}_v{version}", self.name)
    }
}

/// Where a stored offset belongs.
pub type Offsets = HashMap<(String, i32), i64>;

impl Projection {
    /// Identity first: the other projections' policies read its `members` view.
    pub const ALL: [Projection; 10] = [
        Projection::Identity,
        Projection::Orgs,
        Projection::Commands,
        Projection::Security,
        Projection::Credentials,
        Projection::Audit,
        Projection::SyncRuns,
        Projection::Catalog,
        Projection::DeadLetters,
        Projection::Documents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Orgs => "orgs",
            Self::Commands => "commands",
            Self::Identity => "identity",
            Self::Security => "security",
            Self::Credentials => "credentials",
            Self::Audit => "audit",
            Self::SyncRuns => "sync_runs",
            Self::Catalog => "catalog",
            Self::DeadLetters => "dead_letters",
            Self::Documents => "documents",
        }
    }

    pub fn parse(name: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| Error::UnknownProjection(name.to_owned()))
    }

    /// The topics the projection reads.
    pub fn topics(self, topics: &Topics) -> Vec<String> {
        match self {
            Self::Orgs => vec![topics.events("org")],
            Self::Identity => vec![
                topics.events("org"),
                topics.events("user"),
                topics.events("session"),
            ],
            Self::Security => vec![
                topics.events("org"),
                topics.events("user"),
                topics.events("session"),
                topics.security(),
            ],
            Self::Credentials | Self::Audit => vec![topics.events("credential"), topics.vault()],
            Self::SyncRuns => vec![topics.events("sync")],
            Self::Catalog => vec![topics.events("target"), topics.events("profile")],
            Self::DeadLetters => vec![topics.dead_letter_events()],
            Self::Documents => vec![topics.documents_index()],
            Self::Commands => {
                let mut all: Vec<String> = tributary_domain::AGGREGATES
                    .iter()
                    .map(|a| topics.commands(a))
                    .collect();
                all.push(topics.command_results());
                all
            }
        }
    }

    /// The tables this projection writes; each is `<name>_v<version>` behind a view
    /// `<name>`.
    pub fn tables(self) -> &'static [Table] {
        match self {
            Self::Orgs => &[Table {
                name: "orgs",
                policy: Some(
                    "id = tributary_current_org() OR id IN (SELECT org_id FROM members \
                     WHERE user_id = tributary_current_user() AND active)",
                ),
                ddl: include_str!("../sql/orgs.table.sql"),
            }],
            Self::Commands => &[Table {
                name: "commands",
                policy: Some(
                    "org_id = tributary_current_org() OR org_id IN (SELECT org_id FROM members \
                     WHERE user_id = tributary_current_user() AND active)",
                ),
                ddl: include_str!("../sql/commands.table.sql"),
            }],
            Self::Identity => identity::TABLES,
            Self::Security => &[Table {
                name: "security_events",
                policy: Some("org_id = tributary_current_org()"),
                ddl: include_str!("../sql/security_events.sql"),
            }],
            Self::Credentials => credentials::TABLES,
            Self::Audit => credentials::AUDIT_TABLES,
            Self::SyncRuns => sync_runs::TABLES,
            Self::Catalog => catalog::TABLES,
            Self::DeadLetters => dead_letters::TABLES,
            Self::Documents => documents::TABLES,
        }
    }

    /// The versioned name of the projection's main (first) table.
    pub fn table(self, version: i32) -> String {
        self.tables()[0].versioned(version)
    }

    /// Applies a batch of records (each with its topic) to version `version`.
    pub async fn apply(
        self,
        tx: &Transaction<'_>,
        version: i32,
        batch: &[(&str, &Envelope)],
    ) -> Result<u64> {
        let table = self.table(version);
        match self {
            Self::Orgs => orgs::apply(tx, &table, batch).await,
            Self::Commands => commands::apply(tx, &table, batch).await,
            Self::Identity => identity::apply(tx, version, batch).await,
            Self::Security => security::apply(tx, &table, batch).await,
            Self::Credentials => credentials::apply(tx, version, batch).await,
            Self::Audit => credentials::apply_audit(tx, &table, batch).await,
            Self::SyncRuns => sync_runs::apply(tx, version, batch).await,
            Self::Catalog => catalog::apply(tx, version, batch).await,
            Self::DeadLetters => dead_letters::apply(tx, &table, batch).await,
            Self::Documents => documents::apply(tx, &table, batch).await,
        }
    }
}

/// The registry of projection versions, their offsets and the shape (fingerprint of the
/// table definitions) each active version was built with.
pub struct Registry;

/// What [`Registry::shape`] found about the active version's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// Built from this code's table definitions.
    Current,
    /// Built from other definitions, or completed with empty tables since: the version
    /// must be rebuilt from the log before this code projects into it.
    Changed {
        version: i32,
        /// `None`: never recorded, and the columns differ from this code's.
        recorded: Option<String>,
    },
    /// A rebuild by a newer Tributary replaced this code's shape: this process is older
    /// than the tables it would write to.
    Replaced { version: i32, recorded: String },
}

/// The fingerprint of a version that [`Registry::ensure`] completed with empty tables.
const INCOMPLETE: &str = "incomplete";

/// The table definitions without comments and with single spaces: editing a comment or
/// the layout of a file is not a change of shape.
fn normalize_ddl(ddl: &str) -> String {
    ddl.lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A table's or view's columns in order: name and type. Empty when it does not exist.
async fn ordered_columns(
    client: &impl GenericClient,
    relation: &str,
) -> Result<Vec<(String, String)>> {
    let rows = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod)
             FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped
             ORDER BY attnum",
            &[&relation],
        )
        .await
        .map_err(pg("reading a view's columns"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// A table's columns: name, type, and whether it is `NOT NULL`. Empty for a table that
/// does not exist.
async fn columns(
    client: &impl GenericClient,
    table: &str,
) -> Result<BTreeSet<(String, String, bool)>> {
    let rows = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull
             FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&table],
        )
        .await
        .map_err(pg("reading a table's columns"))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// What a swap attempt found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Swap {
    Swapped {
        from: i32,
        to: i32,
    },
    /// The live version has read further on these partitions; read on and try again.
    Behind(Offsets),
}

impl Registry {
    /// Creates version 1 and the view if the projection has never run; returns the
    /// active version.
    pub async fn ensure(client: &impl GenericClient, projection: Projection) -> Result<i32> {
        if let Some(version) = Self::active(client, projection).await? {
            // A table added to the projection after this version was built is created
            // (empty) here; its rows come with the rebuild the projector then runs.
            let mut missing = Vec::new();
            for table in projection.tables() {
                let name = table.versioned(version);
                let row = client
                    .query_one(
                        "SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL",
                        &[&name, &table.name],
                    )
                    .await
                    .map_err(pg("checking projection tables"))?;
                if !row.get::<_, bool>(0) {
                    missing.push(name);
                }
            }
            if !missing.is_empty() {
                Self::create_tables(client, projection, version).await?;
                Self::point_view(client, projection, version).await?;
                // The new tables are empty: the version no longer has the shape of any
                // code, so the projector rebuilds it (unless a swap happened meanwhile).
                client
                    .execute(
                        "UPDATE projections SET fingerprint = $3
                         WHERE name = $1 AND active_version = $2",
                        &[&projection.name(), &version, &INCOMPLETE],
                    )
                    .await
                    .map_err(pg("marking a projection incomplete"))?;
                tracing::warn!(
                    projection = projection.name(),
                    tables = ?missing,
                    "the projection gained tables since it was built; they start empty, and \
                     the projector rebuilds {} from the log before it projects",
                    projection.name()
                );
            }
            // Installations from before row-level security get it here.
            Self::secure(client, projection, version).await?;
            Self::secure_view(client, projection).await?;
            return Ok(version);
        }
        // Two projectors may start at once: an advisory lock keeps creation single.
        client
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&projection.name()],
            )
            .await
            .map_err(pg("locking projection creation"))?;
        Self::create_tables(client, projection, 1).await?;
        let inserted = client
            .execute(
                "INSERT INTO projections (name, active_version, fingerprint) VALUES ($1, 1, $2)
                 ON CONFLICT DO NOTHING",
                &[&projection.name(), &Self::fingerprint(projection)],
            )
            .await
            .map_err(pg("registering a projection"))?;
        if inserted == 1 {
            Self::point_view(client, projection, 1).await?;
        }
        Ok(Self::active(client, projection).await?.unwrap_or(1))
    }

    /// The shape of the projection's tables as this code defines them: a UUIDv5 (SHA-1)
    /// of each table's name and definition, without comments and extra whitespace. Any
    /// change of a column, an index or the set of tables changes it; a comment does not.
    pub fn fingerprint(projection: Projection) -> String {
        let mut text = String::from("tributary:projection-shape\n");
        for table in projection.tables() {
            text.push_str(table.name);
            text.push('\n');
            text.push_str(&normalize_ddl(table.ddl));
            text.push('\n');
        }
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, text.as_bytes())
            .simple()
            .to_string()
    }

    /// Whether the active version was built with this code's table definitions (call
    /// after [`Self::ensure`]). A version recorded before fingerprints existed is compared
    /// column by column; when its columns match, this code's fingerprint is recorded (with
    /// a warning), otherwise it counts as changed.
    pub async fn shape(
        client: &mut tokio_postgres::Client,
        projection: Projection,
    ) -> Result<Shape> {
        let ours = Self::fingerprint(projection);
        let row = client
            .query_opt(
                "SELECT active_version, fingerprint, $2 = ANY(replaced_fingerprints)
                 FROM projections WHERE name = $1",
                &[&projection.name(), &ours],
            )
            .await
            .map_err(pg("reading the projection's shape"))?;
        let Some(row) = row else {
            // Not created yet: `ensure` creates it with this code's shape.
            return Ok(Shape::Current);
        };
        let version: i32 = row.get(0);
        let recorded: Option<String> = row.get(1);
        let replaced: bool = row.get(2);
        match recorded {
            Some(recorded) if recorded == ours => Ok(Shape::Current),
            Some(recorded) if replaced => Ok(Shape::Replaced { version, recorded }),
            Some(recorded) => Ok(Shape::Changed {
                version,
                recorded: Some(recorded),
            }),
            None => match Self::columns_match(client, projection, version).await? {
                Some(false) => Ok(Shape::Changed {
                    version,
                    recorded: None,
                }),
                checked => {
                    client
                        .execute(
                            "UPDATE projections SET fingerprint = $3
                             WHERE name = $1 AND active_version = $2 AND fingerprint IS NULL",
                            &[&projection.name(), &version, &ours],
                        )
                        .await
                        .map_err(pg("recording the projection's shape"))?;
                    tracing::warn!(
                        projection = projection.name(),
                        version,
                        columns_checked = checked.is_some(),
                        "the projection's shape was never recorded (it was built before \
                         Tributary recorded shapes); recording this version's as its shape \
                         without a rebuild. If it fails on a missing column or index, run \
                         `tributary rebuild {}`",
                        projection.name()
                    );
                    Ok(Shape::Current)
                }
            },
        }
    }

    /// Whether the tables of `version` have the columns (names, types, `NOT NULL`) this
    /// code's definitions give them: the definitions run in a scratch schema, inside a
    /// transaction that is rolled back. `None` when that cannot be done (e.g. the role may
    /// not create a schema).
    async fn columns_match(
        client: &mut tokio_postgres::Client,
        projection: Projection,
        version: i32,
    ) -> Result<Option<bool>> {
        let tx = client
            .transaction()
            .await
            .map_err(pg("starting a shape check"))?;
        let mut live = Vec::new();
        for table in projection.tables() {
            live.push(columns(&tx, &table.versioned(version)).await?);
        }
        let path: String = tx
            .query_one("SELECT current_setting('search_path')", &[])
            .await
            .map_err(pg("reading the search path"))?
            .get(0);
        let schema = format!("tributary_shape_{}", uuid::Uuid::new_v4().simple());
        let scratch = format!("CREATE SCHEMA {schema}; SET LOCAL search_path TO {schema}, {path}");
        if let Err(e) = tx.batch_execute(&scratch).await {
            tracing::warn!(projection = projection.name(), error = %e, "could not create a scratch schema to compare the projection's columns");
            return Ok(None);
        }
        for (table, live) in projection.tables().iter().zip(&live) {
            let probe = format!("probe_{}", table.name);
            if let Err(e) = tx
                .batch_execute(&table.ddl.replace("{table}", &probe))
                .await
            {
                tracing::warn!(projection = projection.name(), error = %e, "could not create a scratch table to compare the projection's columns");
                return Ok(None);
            }
            if columns(&tx, &format!("{schema}.{probe}")).await? != *live {
                return Ok(Some(false));
            }
        }
        tx.rollback()
            .await
            .map_err(pg("dropping the scratch schema"))?;
        Ok(Some(true))
    }

    /// Serializes rebuilds of one projection across processes: the `tributary rebuild`
    /// command and projectors that rebuild a changed shape. Waits while another holds it.
    pub async fn lock_rebuild(db: &crate::Db, projection: Projection) -> Result<RebuildLock> {
        // Off the pool: dropping the lock closes its connection, which releases it even
        // when the rebuild fails or panics.
        let client = deadpool_postgres::Object::take(db.get().await?);
        let key = format!("tributary.rebuild.{}", projection.name());
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock(hashtext($1))", &[&key])
            .await
            .map_err(pg("locking the projection for a rebuild"))?
            .get(0);
        if !locked {
            tracing::info!(
                projection = projection.name(),
                "another process is rebuilding the projection; waiting for it to finish"
            );
            client
                .execute("SELECT pg_advisory_lock(hashtext($1))", &[&key])
                .await
                .map_err(pg("waiting for another rebuild of the projection"))?;
        }
        Ok(RebuildLock { _client: client })
    }

    pub async fn active(
        client: &impl GenericClient,
        projection: Projection,
    ) -> Result<Option<i32>> {
        let row = client
            .query_opt(
                "SELECT active_version FROM projections WHERE name = $1",
                &[&projection.name()],
            )
            .await
            .map_err(pg("reading the active projection version"))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Starts a batch: takes a shared lock on the projection's row, so a swap waits for
    /// the batch, and returns the version that is active now.
    pub async fn lock_shared(tx: &Transaction<'_>, projection: Projection) -> Result<i32> {
        let row = tx
            .query_one(
                "SELECT active_version FROM projections WHERE name = $1 FOR SHARE",
                &[&projection.name()],
            )
            .await
            .map_err(pg("locking the projection for a batch"))?;
        Ok(row.get(0))
    }

    pub async fn create_tables(
        client: &impl GenericClient,
        projection: Projection,
        version: i32,
    ) -> Result<()> {
        for table in projection.tables() {
            let ddl = table.ddl.replace("{table}", &table.versioned(version));
            client
                .batch_execute(&ddl)
                .await
                .map_err(pg("creating projection tables"))?;
        }
        Self::secure(client, projection, version).await
    }

    /// Row-level security on a version's table: `tributary_app` (the role the API reads
    /// tenant data as) sees only the rows of the org in `app.current_org`. Idempotent.
    async fn secure(
        client: &impl GenericClient,
        projection: Projection,
        version: i32,
    ) -> Result<()> {
        for table in projection.tables() {
            let name = table.versioned(version);
            let mut sql = format!("ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;");
            if let Some(policy) = table.policy {
                let using = policy.replace("{v}", &version.to_string());
                sql.push_str(&format!(
                    "GRANT SELECT ON {name} TO tributary_app;
                     DO $$ BEGIN
                         DROP POLICY IF EXISTS tenant ON {name};
                         CREATE POLICY tenant ON {name} FOR SELECT TO tributary_app USING ({using});
                     EXCEPTION WHEN duplicate_object THEN NULL;
                     END $$;"
                ));
            }
            client
                .batch_execute(&sql)
                .await
                .map_err(pg("securing projection tables"))?;
        }
        Ok(())
    }

    /// The view reads with the caller's rights (`security_invoker`), so the table's
    /// policies apply to it; by default a view reads with its owner's.
    async fn secure_view(client: &impl GenericClient, projection: Projection) -> Result<()> {
        for table in projection.tables() {
            let view = table.name;
            let grant = if table.policy.is_some() {
                format!("GRANT SELECT ON {view} TO tributary_app;")
            } else {
                String::new()
            };
            client
                .batch_execute(&format!(
                    "ALTER VIEW {view} SET (security_invoker = true); {grant}"
                ))
                .await
                .map_err(pg("securing the projection view"))?;
        }
        Ok(())
    }

    /// A fresh, empty version for a rebuild (dropping what a failed rebuild left).
    pub async fn new_version(client: &impl GenericClient, projection: Projection) -> Result<i32> {
        let active = Self::ensure(client, projection).await?;
        let version = active + 1;
        Self::drop_tables(client, projection, version).await?;
        client
            .execute(
                "DELETE FROM projection_offsets WHERE projection = $1 AND version = $2",
                &[&projection.name(), &version],
            )
            .await
            .map_err(pg("clearing stale rebuild offsets"))?;
        Self::create_tables(client, projection, version).await?;
        Ok(version)
    }

    async fn point_view(
        client: &impl GenericClient,
        projection: Projection,
        version: i32,
    ) -> Result<()> {
        for table in projection.tables() {
            let (view, versioned) = (table.name, table.versioned(version));
            let shown = ordered_columns(client, view).await?;
            let wanted = ordered_columns(client, &versioned).await?;
            let sql = if shown.is_empty() {
                format!("CREATE OR REPLACE VIEW {view} AS SELECT * FROM {versioned}")
            } else if shown.iter().all(|c| wanted.contains(c)) {
                // `CREATE OR REPLACE VIEW` takes new columns only at the end: keep the
                // view's order and append what the version adds, wherever its table has
                // them.
                let added = wanted.iter().filter(|c| !shown.contains(c));
                let list = shown
                    .iter()
                    .chain(added)
                    .map(|(name, _)| format!("\"{}\"", name.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("CREATE OR REPLACE VIEW {view} AS SELECT {list} FROM {versioned}")
            } else {
                // A column was dropped or changed type: only a new view can show that.
                // (This fails while other objects depend on the view.)
                format!("DROP VIEW {view}; CREATE VIEW {view} AS SELECT * FROM {versioned}")
            };
            client
                .batch_execute(&sql)
                .await
                .map_err(pg("pointing the view"))?;
        }
        Self::secure_view(client, projection).await
    }

    async fn drop_tables(
        client: &impl GenericClient,
        projection: Projection,
        version: i32,
    ) -> Result<()> {
        // Reverse order: a later table's policy may read an earlier one.
        for table in projection.tables().iter().rev() {
            client
                .batch_execute(&format!(
                    "DROP TABLE IF EXISTS {}",
                    table.versioned(version)
                ))
                .await
                .map_err(pg("dropping a projection version's tables"))?;
        }
        Ok(())
    }

    pub async fn offsets(
        client: &impl GenericClient,
        projection: Projection,
        version: i32,
    ) -> Result<Offsets> {
        let rows = client
            .query(
                "SELECT topic, partition, next_offset FROM projection_offsets
                 WHERE projection = $1 AND version = $2",
                &[&projection.name(), &version],
            )
            .await
            .map_err(pg("reading projection offsets"))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    (r.get::<_, String>(0), r.get::<_, i32>(1)),
                    r.get::<_, i64>(2),
                )
            })
            .collect())
    }

    pub async fn save_offsets(
        tx: &Transaction<'_>,
        projection: Projection,
        version: i32,
        offsets: &Offsets,
    ) -> Result<()> {
        let (mut topics, mut partitions, mut nexts) = (Vec::new(), Vec::new(), Vec::new());
        for ((topic, partition), next) in offsets {
            topics.push(topic.as_str());
            partitions.push(*partition);
            nexts.push(*next);
        }
        tx.execute(
            "INSERT INTO projection_offsets (projection, version, topic, partition, next_offset)
             SELECT $1, $2, * FROM unnest($3::text[], $4::int[], $5::bigint[])
             ON CONFLICT (projection, version, topic, partition)
             DO UPDATE SET next_offset = excluded.next_offset",
            &[&projection.name(), &version, &topics, &partitions, &nexts],
        )
        .await
        .map_err(pg("saving projection offsets"))?;
        Ok(())
    }

    /// Makes `version` the live one if it has read at least as far as the live version
    /// on every partition; the old tables are dropped in the same transaction.
    pub async fn swap(
        client: &mut tokio_postgres::Client,
        projection: Projection,
        version: i32,
        ours: &Offsets,
    ) -> Result<Swap> {
        let tx = client
            .transaction()
            .await
            .map_err(pg("starting the swap"))?;
        let row = tx
            .query_one(
                "SELECT active_version FROM projections WHERE name = $1 FOR UPDATE",
                &[&projection.name()],
            )
            .await
            .map_err(pg("locking the projection for the swap"))?;
        let live: i32 = row.get(0);
        let live_offsets = Self::offsets(&tx, projection, live).await?;
        let behind: Offsets = live_offsets
            .into_iter()
            .filter(|(tp, next)| ours.get(tp).copied().unwrap_or(0) < *next)
            .collect();
        if !behind.is_empty() {
            tx.rollback().await.map_err(pg("releasing the swap lock"))?;
            return Ok(Swap::Behind(behind));
        }
        Self::point_view(&tx, projection, version).await?;
        // The new version has this code's shape; the shape it replaces is remembered, so
        // an older process does not rebuild the projection back to it.
        tx.execute(
            "UPDATE projections SET active_version = $2, fingerprint = $3,
                 replaced_fingerprints = array_remove(
                     CASE WHEN fingerprint IS NULL OR fingerprint = $4
                              OR fingerprint = ANY(replaced_fingerprints)
                          THEN replaced_fingerprints
                          ELSE array_append(replaced_fingerprints, fingerprint) END,
                     $3),
                 updated_at = now()
             WHERE name = $1",
            &[
                &projection.name(),
                &version,
                &Self::fingerprint(projection),
                &INCOMPLETE,
            ],
        )
        .await
        .map_err(pg("activating the new version"))?;
        tx.execute(
            "DELETE FROM projection_offsets WHERE projection = $1 AND version = $2",
            &[&projection.name(), &live],
        )
        .await
        .map_err(pg("dropping the old offsets"))?;
        Self::drop_tables(&tx, projection, live).await?;
        tx.commit().await.map_err(pg("committing the swap"))?;
        Ok(Swap::Swapped {
            from: live,
            to: version,
        })
    }
}

/// Held while a projection is rebuilt ([`Registry::lock_rebuild`]); dropping it
/// releases the lock.
pub struct RebuildLock {
    _client: deadpool_postgres::ClientWrapper,
}

fn decode_error(env: &Envelope, reason: impl ToString) -> Error {
    Error::Decode {
        event_id: env.id.clone(),
        ty: env.ty.clone(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_comments_and_layout_but_not_definitions() {
        let commented = "-- One row per thing.\nCREATE TABLE IF NOT EXISTS {table} (\n    id uuid PRIMARY KEY, -- the id\n    name text\n);";
        let relaid =
            "CREATE TABLE IF NOT EXISTS {table} (\n id  uuid PRIMARY KEY,\n\n name\ttext\n);";
        let grown = "CREATE TABLE IF NOT EXISTS {table} (\n id uuid PRIMARY KEY,\n name text,\n heartbeat_at timestamptz\n);";
        assert_eq!(normalize_ddl(commented), normalize_ddl(relaid));
        assert_ne!(normalize_ddl(commented), normalize_ddl(grown));

        let all: std::collections::HashSet<String> = Projection::ALL
            .map(Registry::fingerprint)
            .into_iter()
            .collect();
        assert_eq!(
            all.len(),
            Projection::ALL.len(),
            "each projection has its own"
        );
        assert_eq!(
            Registry::fingerprint(Projection::Orgs),
            Registry::fingerprint(Projection::Orgs)
        );
        assert_ne!(Registry::fingerprint(Projection::Orgs), INCOMPLETE);
    }
}
