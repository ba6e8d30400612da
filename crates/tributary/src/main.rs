use anyhow::Context;
use clap::{Parser, Subcommand};
use metrics_exporter_prometheus::PrometheusBuilder;
use tributary::{Roles, Settings, app};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_log::topics::{Created, TopicAdmin};
use tributary_store::Projection;

mod dlq;

/// mimalloc rather than glibc's allocator: the sync path allocates and frees small
/// buffers on many threads (records, headers, JSON), where glibc's spent about a quarter
/// of `serve`'s CPU in `scripts/bench sync_pipeline` (see ADR 0018).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tributary keeps retrieval systems fed with documents from the tools teams use.
#[derive(Debug, Parser)]
#[command(name = "tributary", version)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Every role in one process: API, processor, projectors, keeper, refresher, worker,
    /// deliverer and scheduler (creates topics and migrates first).
    Serve,
    /// The HTTP API only.
    Api,
    /// The command processor only.
    Processor,
    /// The projectors only.
    Projector,
    /// The vault's background work only: relays key events, shreds the keys of deleted
    /// orgs, re-encrypts secrets under retired data keys.
    Keeper,
    /// Renews OAuth tokens before they expire (one renewal per credential at a time).
    Refresher,
    /// Claims sync runs and drives their sources; also watches runs for missed
    /// heartbeats and stalls. Run several for more runs at once.
    Worker,
    /// Delivers document records to the targets, with retries and dead letters.
    Deliverer,
    /// Requests the runs profiles' schedules call for (any number may run; none leads).
    Scheduler,
    /// Key-encryption keys: generate one, re-wrap every data key, show what wraps what.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// People: forget a user for good (a data-subject request reaching the operator).
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Who did what to an org's credentials and keys, replayed from the log alone.
    Audit {
        #[arg(long)]
        org: uuid::Uuid,
        #[arg(long)]
        credential: Option<uuid::Uuid>,
        /// `user:<id>`, `key:<id>` or `system:<role>`.
        #[arg(long)]
        actor: Option<String>,
        /// e.g. `credential.revealed`.
        #[arg(long)]
        action: Option<String>,
        /// RFC 3339, e.g. 2026-11-01T00:00:00Z.
        #[arg(long)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Applies the numbered SQL files in migrations/.
    Migrate,
    /// Creates, lists or describes the installation's topics.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Replays the log into fresh tables of a projection, then swaps them in.
    Rebuild {
        /// `orgs` or `commands`.
        projection: String,
        /// Records per Postgres transaction.
        #[arg(long, default_value_t = 20_000)]
        batch: usize,
    },
    /// Document dead letters: list them, and redrive them once their target is fixed.
    Dlq {
        #[command(subcommand)]
        action: dlq::Action,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Prints a new key-encryption key entry `id:BASE64` for TRIBUTARY_KEK.
    GenerateKek {
        /// The key's id, e.g. `kek-2026-11`.
        #[arg(long, default_value = "kek-1")]
        id: String,
    },
    /// Re-wraps every data key with the first key in TRIBUTARY_KEK (put the new key
    /// first and keep the old one listed until this has finished).
    RotateKek,
    /// How many data keys each key-encryption key wraps.
    Status,
}

#[derive(Debug, Subcommand)]
enum UsersAction {
    /// Removes the user from every org, records user.forgotten and destroys the key of
    /// their address, name and password hash. Cannot be undone.
    Forget {
        /// The user's id.
        id: uuid::Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum TopicsAction {
    Create,
    List,
    Describe,
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(&cli.settings.log_format);
    let settings = cli.settings;
    let roles = match cli.command {
        Command::Serve => {
            app::setup(&settings).await?;
            Roles::ALL
        }
        Command::Api => Roles {
            api: true,
            ..Roles::NONE
        },
        Command::Processor => Roles {
            processor: true,
            ..Roles::NONE
        },
        Command::Projector => Roles {
            projector: true,
            ..Roles::NONE
        },
        Command::Keeper => Roles {
            keeper: true,
            ..Roles::NONE
        },
        Command::Refresher => Roles {
            refresher: true,
            ..Roles::NONE
        },
        Command::Worker => Roles {
            worker: true,
            ..Roles::NONE
        },
        Command::Deliverer => Roles {
            deliverer: true,
            ..Roles::NONE
        },
        Command::Scheduler => Roles {
            scheduler: true,
            ..Roles::NONE
        },
        Command::Keys { action } => return keys(&settings, action).await,
        Command::Users {
            action: UsersAction::Forget { id },
        } => return forget(&settings, id).await,
        Command::Audit {
            org,
            credential,
            actor,
            action,
            since,
            until,
            json,
        } => {
            let query = tributary::audit::Query {
                org,
                credential,
                actor,
                action,
                since,
                until,
            };
            return audit(&settings, query, json).await;
        }
        Command::Migrate => {
            let applied = tributary_store::migrate(&settings.database_url).await?;
            if applied.is_empty() {
                println!("the database is up to date");
            }
            for m in applied {
                println!("applied {m}");
            }
            return Ok(());
        }
        Command::Topics { action } => return topics(&settings, action).await,
        Command::Rebuild { projection, batch } => {
            return rebuild(&settings, &projection, batch).await;
        }
        Command::Dlq { action } => return dlq::run(&settings, action).await,
    };
    let metrics = PrometheusBuilder::new()
        .set_buckets(&[
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])?
        .install_recorder()
        .context("installing the metrics recorder")?;
    let running = app::start(&settings, roles, Some(metrics)).await?;
    if let Some(addr) = running.addr {
        tracing::info!(%addr, "API listening: http://{addr}/api/v1/openapi.json");
    }
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}

async fn topics(settings: &Settings, action: TopicsAction) -> anyhow::Result<()> {
    let kafka = KafkaSettings::new(&settings.kafka_brokers);
    let admin = TopicAdmin::new(&kafka.base(), Topics::new(&settings.topic_prefix))?;
    match action {
        TopicsAction::Create => {
            for (name, created) in admin
                .create(settings.partitions, settings.replication)
                .await?
            {
                let what = match created {
                    Created::Created => "created",
                    Created::AlreadyExisted => "exists",
                };
                println!("{what:8} {name}");
            }
        }
        TopicsAction::List => {
            for (name, partitions) in admin.list()? {
                println!("{name}\t{partitions} partitions");
            }
        }
        TopicsAction::Describe => {
            for t in admin.describe().await? {
                let configs: Vec<String> =
                    t.configs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "{}\tpartitions={}\t{}",
                    t.name,
                    t.partitions,
                    configs.join(" ")
                );
            }
        }
    }
    Ok(())
}

async fn rebuild(settings: &Settings, name: &str, batch: usize) -> anyhow::Result<()> {
    let projection = Projection::parse(name)?;
    let kafka = KafkaSettings::new(&settings.kafka_brokers);
    let topics = Topics::new(&settings.topic_prefix);
    let db = tributary_store::connect(&settings.database_url, 4)?;
    let handle = tokio::runtime::Handle::current();
    let report = tokio::task::spawn_blocking(move || {
        tributary_runtime::rebuild(projection, &kafka, &topics, &db, &handle, batch)
    })
    .await??;
    println!(
        "rebuilt {}: version {} -> {}, {} records in {:.1}s ({:.0}/s)",
        report.projection,
        report.from_version,
        report.to_version,
        report.records,
        report.seconds,
        report.per_second()
    );
    Ok(())
}

async fn keys(settings: &Settings, action: KeysAction) -> anyhow::Result<()> {
    if let KeysAction::GenerateKek { id } = action {
        let entry = tributary_vault::KekRing::generate_entry(&id)?;
        println!("{entry}");
        eprintln!(
            "put it first in TRIBUTARY_KEK (keep older keys after it until `tributary keys rotate-kek` has run)"
        );
        return Ok(());
    }
    let ring = std::sync::Arc::new(settings.kek_ring()?);
    let db = tributary_store::connect(&settings.database_url, 2)?;
    let vault = tributary_store::vault::Vault::new(db, ring.clone());
    match action {
        KeysAction::GenerateKek { .. } => unreachable!("answered above"),
        KeysAction::RotateKek => {
            eprintln!("re-wrapping every data key with {}…", ring.primary_id());
            let done = vault
                .rotate_kek("system:cli", |n| eprintln!("  {n} keys re-wrapped"))
                .await?;
            println!(
                "re-wrapped {done} data keys with {}; older keys can leave TRIBUTARY_KEK once `tributary keys status` shows they wrap none",
                ring.primary_id()
            );
        }
        KeysAction::Status => {
            println!("primary KEK: {}", ring.primary_id());
            for (kek, n) in vault.keys_per_kek().await? {
                let configured = if ring.contains(&kek) {
                    ""
                } else {
                    "  (NOT CONFIGURED)"
                };
                println!("{kek}\t{n} data keys{configured}");
            }
        }
    }
    Ok(())
}

async fn forget(settings: &Settings, user: uuid::Uuid) -> anyhow::Result<()> {
    let ring = std::sync::Arc::new(settings.kek_ring()?);
    let db = tributary_store::connect(&settings.database_url, 2)?;
    let vault = tributary_store::vault::Vault::new(db.clone(), ring);
    let producer: rdkafka::producer::FutureProducer = KafkaSettings::new(&settings.kafka_brokers)
        .producer()
        .create()?;
    let topics = Topics::new(&settings.topic_prefix);
    eprintln!("forgetting user {user}…");
    tributary::forget::forget_user(&db, &vault, &producer, &topics, user, |step| {
        eprintln!("  {step}")
    })
    .await?;
    println!(
        "user {user} is forgotten: their address, name and password hash are unreadable for good"
    );
    Ok(())
}

async fn audit(
    settings: &Settings,
    query: tributary::audit::Query,
    json: bool,
) -> anyhow::Result<()> {
    let kafka = KafkaSettings::new(&settings.kafka_brokers);
    let topics = Topics::new(&settings.topic_prefix);
    let entries =
        tokio::task::spawn_blocking(move || tributary::audit::replay(&kafka, &topics, &query))
            .await??;
    for e in &entries {
        if json {
            println!("{}", serde_json::to_string(e)?);
        } else {
            println!(
                "{}\t{}\t{}\t{}",
                e.at.to_rfc3339(),
                e.action,
                e.actor.as_deref().unwrap_or("-"),
                e.credential_id.map_or("-".to_owned(), |c| c.to_string()),
            );
        }
    }
    eprintln!("{} entries", entries.len());
    Ok(())
}
