//! Change notices from projectors to readers that wait for them, over Postgres
//! `LISTEN`/`NOTIFY`.
//!
//! A projector announces each batch inside the batch's own transaction, so a notice is
//! delivered exactly when the rows it speaks of became visible. Readers keep one
//! connection that listens and turn notices into a counter they can wait on; they look
//! the rows up themselves, so a lost notice costs latency, never a wrong answer.

use crate::error::{Result, pg};
use crate::projection::Projection;
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::{AsyncMessage, GenericClient, NoTls};

/// The channel every projector notifies on; the payload is the projection's name.
pub const CHANNEL: &str = "tributary_projected";

/// Announces that `projection` has committed a batch (delivered at commit).
pub async fn announce(client: &impl GenericClient, projection: Projection) -> Result<()> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &projection.name()])
        .await
        .map_err(pg("announcing a projection batch"))?;
    Ok(())
}

/// Listens on [`CHANNEL`] on a connection of its own until the returned receiver and all
/// its clones are dropped. The value counts notices; it also moves whenever the listener
/// has (re)subscribed or lost its connection, since notices sent meanwhile are lost.
pub fn listen(url: String) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0u64);
    tokio::spawn(async move {
        let mut failures = 0u32;
        while !tx.is_closed() {
            match listen_once(&url, &tx).await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    // Quiet at first: a database restart is routine and waiters fall
                    // back to looking for themselves.
                    if failures > 3 {
                        tracing::warn!(error = %e, "projection notices unavailable; waiting requests poll instead");
                    } else {
                        tracing::debug!(error = %e, "projection listener disconnected");
                    }
                }
            }
            tx.send_modify(|n| *n += 1);
            let delay = Duration::from_millis(100 * 2u64.pow(failures.min(6)));
            tokio::time::sleep(delay.min(Duration::from_secs(5))).await;
        }
    });
    rx
}

async fn listen_once(url: &str, tx: &watch::Sender<u64>) -> Result<()> {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(pg("connecting to listen for projection notices"))?;
    let notices = tx.clone();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => notices.send_modify(|n| *n += 1),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(pg("subscribing to projection notices"))?;
    tracing::debug!("listening for projection notices");
    // Notices sent before this point were missed: have waiters look again.
    tx.send_modify(|n| *n += 1);
    // The connection ends on a server restart or when `tx` has no receivers left.
    tokio::select! {
        ended = driver => {
            match ended {
                Ok(Ok(())) | Err(_) => Ok(()),
                Ok(Err(e)) => Err(pg("listening for projection notices")(e)),
            }
        }
        () = tx.closed() => Ok(()),
    }
}
