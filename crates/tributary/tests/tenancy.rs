//! Row-level security on the read models: a tenant transaction sees its org's rows and
//! nothing else; without an org it sees nothing.

use tokio_postgres::NoTls;
use tributary_store::tenant::{self, Scope};
use tributary_testkit::TestEnv;
use uuid::Uuid;

async fn connect(env: &TestEnv) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(&env.settings.database_url, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Inserts an org and one command of it straight into the active tables, as the owner
/// (a projector) would.
async fn seed(pg: &tokio_postgres::Client, slug: &str) -> anyhow::Result<Uuid> {
    let id = Uuid::now_v7();
    pg.execute(
        "INSERT INTO orgs_v1 (id, slug, name, created_at, updated_at, version)
         VALUES ($1, $2, $2, now(), now(), 1)",
        &[&id, &slug],
    )
    .await?;
    pg.execute(
        "INSERT INTO commands_v1 (id, command_type, org_id, status) VALUES ($1, 'x', $2, 'accepted')",
        &[&Uuid::now_v7(), &id],
    )
    .await?;
    Ok(id)
}

async fn visible(tx: &tokio_postgres::Transaction<'_>) -> anyhow::Result<(Vec<Uuid>, Vec<Uuid>)> {
    let orgs = tx.query("SELECT id FROM orgs", &[]).await?;
    let commands = tx.query("SELECT org_id FROM commands", &[]).await?;
    Ok((
        orgs.iter().map(|r| r.get(0)).collect(),
        commands.iter().map(|r| r.get(0)).collect(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_sees_only_its_own_rows_and_no_setting_sees_none() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let mut pg = connect(&env).await?;
    let a = seed(&pg, "org-a").await?;
    let b = seed(&pg, "org-b").await?;
    let owner: i64 = pg.query_one("SELECT count(*) FROM orgs", &[]).await?.get(0);
    assert_eq!(owner, 2, "the owner (projectors, rebuilds) sees every row");

    for (org, other) in [(a, b), (b, a)] {
        let tx = tenant::begin(&mut pg, Scope { org, user: None }).await?;
        let (orgs, commands) = visible(&tx).await?;
        assert_eq!(orgs, vec![org]);
        assert_eq!(commands, vec![org]);
        let by_id = tx
            .query("SELECT id FROM orgs WHERE id = $1", &[&other])
            .await?;
        assert!(by_id.is_empty(), "org {org} read org {other} by id");
        tx.rollback().await?;
    }

    // The app role without an org: nothing at all.
    let tx = pg.transaction().await?;
    tx.batch_execute("SET LOCAL ROLE tributary_app").await?;
    let (orgs, commands) = visible(&tx).await?;
    assert!(orgs.is_empty() && commands.is_empty());
    tx.rollback().await?;

    // The scope ends with its transaction: the pooled connection is the owner again.
    let role: String = pg.query_one("SELECT current_user::text", &[]).await?.get(0);
    assert_ne!(role, "tributary_app");
    let setting: Option<String> = pg
        .query_one(
            "SELECT nullif(current_setting('app.current_org', true), '')",
            &[],
        )
        .await?
        .get(0);
    assert_eq!(setting, None);

    // Tenant transactions read; they cannot write.
    let tx = tenant::begin(&mut pg, Scope { org: a, user: None }).await?;
    let write = tx
        .execute("UPDATE orgs_v1 SET name = 'x' WHERE id = $1", &[&a])
        .await;
    assert!(write.is_err(), "a tenant transaction could write");
    Ok(())
}
