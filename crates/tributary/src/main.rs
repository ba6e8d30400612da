use anyhow::Context;
use clap::{Parser, Subcommand};
use metrics_exporter_prometheus::PrometheusBuilder;
use tributary::{Roles, Settings, app};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_log::topics::{Created, TopicAdmin};
use tributary_store::Projection;

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
    /// API, processor and projectors in one process (creates topics and migrates first).
    Serve,
    /// The HTTP API only.
    Api,
    /// The command processor only.
    Processor,
    /// The projectors only.
    Projector,
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
            processor: false,
            projector: false,
        },
        Command::Processor => Roles {
            api: false,
            processor: true,
            projector: false,
        },
        Command::Projector => Roles {
            api: false,
            processor: false,
            projector: true,
        },
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
