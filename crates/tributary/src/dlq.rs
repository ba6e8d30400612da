//! `tributary dlq list` and `tributary dlq redrive`: the operator's view of document
//! dead letters, across orgs or for one, from the `dead_letters` read model; a redrive
//! is the API's (`POST /dead-letters/redrive`), acted as `system:cli`.

use anyhow::{Context, bail};
use clap::{ArgGroup, Subcommand};
use tributary::Settings;
use tributary_api::dead_letters::{self as api, MAX_REDRIVE};
use tributary_log::Topics;
use tributary_log::client::KafkaSettings;
use tributary_store::dead_letters::{self as store, CLASSES, LetterFilter, LetterRow, STATES};
use uuid::Uuid;

const ACTOR: &str = "system:cli";

#[derive(Debug, Subcommand)]
pub(crate) enum Action {
    /// Lists document dead letters, the latest failure first.
    List {
        /// Only this org's letters (default: every org).
        #[arg(long)]
        org: Option<Uuid>,
        #[arg(long)]
        target: Option<Uuid>,
        #[arg(long)]
        profile: Option<Uuid>,
        #[arg(long)]
        run: Option<Uuid>,
        /// `permanent`, `transient`, `rate_limited` or `malformed`.
        #[arg(long)]
        class: Option<String>,
        /// `dead` or `redriven`.
        #[arg(long)]
        state: Option<String>,
        /// At most this many (1 to 10000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Sends dead letters back to their target (fix the target first): the letters
    /// named by id, or every letter not yet redriven of a target, run or profile.
    #[command(group(ArgGroup::new("what").required(true).multiple(true).args(["ids", "target", "run", "profile"])))]
    Redrive {
        /// A dead letter's id (repeat for several).
        #[arg(long = "id", value_name = "ID", conflicts_with_all = ["target", "run", "profile"])]
        ids: Vec<Uuid>,
        #[arg(long)]
        target: Option<Uuid>,
        #[arg(long)]
        run: Option<Uuid>,
        #[arg(long)]
        profile: Option<Uuid>,
        /// Only this org's letters (default: every org).
        #[arg(long)]
        org: Option<Uuid>,
    },
}

pub(crate) async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    let db = tributary_store::connect(&settings.database_url, 2)?;
    match action {
        Action::List {
            org,
            target,
            profile,
            run,
            class,
            state,
            limit,
            json,
        } => {
            if let Some(c) = class.as_deref()
                && !CLASSES.contains(&c)
            {
                bail!(
                    "--class {c:?} is not a dead-letter class; use one of {}",
                    CLASSES.join(", ")
                );
            }
            if let Some(s) = state.as_deref()
                && !STATES.contains(&s)
            {
                bail!(
                    "--state {s:?} is not a dead-letter state; use one of {}",
                    STATES.join(", ")
                );
            }
            if !(1..=10_000).contains(&limit) {
                bail!("--limit must be between 1 and 10000, not {limit}");
            }
            let filter = LetterFilter {
                org_id: org,
                target_id: target,
                profile_id: profile,
                run_id: run,
                class,
                state,
                ..LetterFilter::default()
            };
            let client = db.get().await.with_context(reach(settings))?;
            let mut rows = store::list(&**client, &filter, None, limit + 1)
                .await
                .map_err(read_model)?;
            let more = rows.len() as i64 > limit;
            rows.truncate(limit as usize);
            if json {
                for r in &rows {
                    println!("{}", serde_json::to_string(&as_json(r))?);
                }
            } else {
                print_table(&rows);
            }
            eprintln!(
                "{} dead letter{}{}",
                rows.len(),
                if rows.len() == 1 { "" } else { "s" },
                if more {
                    "; more match: raise --limit or narrow with --target, --run, --class"
                } else {
                    ""
                }
            );
        }
        Action::Redrive {
            ids,
            target,
            run,
            profile,
            org,
        } => {
            let client = db.get().await.with_context(reach(settings))?;
            let (chosen, skipped) = if ids.is_empty() {
                let filter = LetterFilter {
                    org_id: org,
                    target_id: target,
                    profile_id: profile,
                    run_id: run,
                    state: Some(store::DEAD.to_owned()),
                    ..LetterFilter::default()
                };
                (every(&db, &filter).await?, Vec::new())
            } else {
                let rows = store::by_ids(&**client, org, &ids)
                    .await
                    .map_err(read_model)?;
                api::pick(&ids, rows).map_err(|e| {
                    anyhow::anyhow!(
                        "{e}; `tributary dlq list` shows the dead letters and their ids"
                    )
                })?
            };
            drop(client);
            for s in &skipped {
                eprintln!("skipped {}: {}", s.id, s.reason);
            }
            if chosen.is_empty() {
                println!("nothing to redrive: no dead letter that is not redriven yet matches");
                return Ok(());
            }
            let kafka = KafkaSettings::new(&settings.kafka_brokers);
            let topics = Topics::new(&settings.topic_prefix);
            let mut redriven = 0;
            for chunk in chosen.chunks(MAX_REDRIVE) {
                let (done, missing) = api::redrive(&kafka, &topics, &db, chunk, ACTOR)
                    .await
                    .with_context(|| {
                        format!(
                            "redriving through Kafka at {}; is it running? (scripts/infra up)",
                            settings.kafka_brokers
                        )
                    })?;
                for s in &missing {
                    eprintln!("skipped {}: {}", s.id, s.reason);
                }
                redriven += done.len();
            }
            println!(
                "redrove {redriven} dead letter{}; the deliverer sends {} to {} target again",
                if redriven == 1 { "" } else { "s" },
                if redriven == 1 { "it" } else { "them" },
                if redriven == 1 { "its" } else { "their" },
            );
        }
    }
    Ok(())
}

/// Every letter matching `filter`, page by page.
async fn every(db: &tributary_store::Db, filter: &LetterFilter) -> anyhow::Result<Vec<LetterRow>> {
    let client = db.get().await?;
    let mut all: Vec<LetterRow> = Vec::new();
    loop {
        let after = all.last().map(|r| (r.last_failure, r.id));
        let page = store::list(&**client, filter, after, 1000)
            .await
            .map_err(read_model)?;
        let done = page.len() < 1000;
        all.extend(page);
        if done {
            break;
        }
    }
    all.retain(LetterRow::redrivable);
    Ok(all)
}

fn reach(settings: &Settings) -> impl FnOnce() -> String + '_ {
    move || {
        format!(
            "connecting to Postgres ({}); is it running? (scripts/infra up)",
            redacted_url(&settings.database_url)
        )
    }
}

/// The database URL without its password, for error messages.
fn redacted_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn read_model(e: tributary_store::Error) -> anyhow::Error {
    if e.to_string().contains("42P01") {
        anyhow::anyhow!(
            "the dead_letters read model does not exist in this database; run `tributary migrate` \
             (and a projector, e.g. `tributary serve`, to fill it)"
        )
    } else {
        anyhow::Error::new(e).context("reading the dead_letters read model")
    }
}

fn as_json(r: &LetterRow) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "org_id": r.org_id, "profile_id": r.profile_id, "run_id": r.run_id,
        "target_id": r.target_id, "doc_id": r.doc_id, "op": r.op, "class": r.class,
        "message": r.message, "stage": r.stage, "attempts": r.attempts,
        "first_failure": r.first_failure, "last_failure": r.last_failure, "state": r.state,
        "redriven_at": r.redriven_at, "redriven_by": r.redriven_by, "redrive_of": r.redrive_of,
    })
}

fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn print_table(rows: &[LetterRow]) {
    let dash = || "-".to_owned();
    println!(
        "{:<36}  {:<8}  {:<12}  {:<36}  {:<36}  {:<24}  {:>5}  {:<20}  MESSAGE",
        "ID", "STATE", "CLASS", "TARGET", "RUN", "DOCUMENT", "TRIES", "LAST FAILURE"
    );
    for r in rows {
        println!(
            "{:<36}  {:<8}  {:<12}  {:<36}  {:<36}  {:<24}  {:>5}  {:<20}  {}",
            r.id,
            r.state,
            r.class,
            r.target_id.map_or_else(dash, |t| t.to_string()),
            r.run_id.map_or_else(dash, |t| t.to_string()),
            clip(r.doc_id.as_deref().unwrap_or("-"), 24),
            r.attempts,
            r.last_failure.format("%Y-%m-%d %H:%M:%S"),
            clip(&r.message, 80),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_is_shown_without_its_password() {
        assert_eq!(
            redacted_url("postgres://tributary:s3cret@127.0.0.1:15432/tributary"),
            "postgres://tributary:***@127.0.0.1:15432/tributary"
        );
        assert_eq!(redacted_url("postgres://host/db"), "postgres://host/db");
    }

    #[test]
    fn long_cells_are_clipped() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("a rather long message", 8), "a rathe…");
    }
}
