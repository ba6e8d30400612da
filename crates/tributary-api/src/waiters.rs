//! Requests waiting for the read model (`Prefer: wait`), woken by projection notices.
//!
//! Every waiting request registers what it waits for; one task looks all of them up in
//! a single query per kind whenever a projector announces a batch (and every
//! [`SWEEP`] in case a notice was lost). So the database sees a query per projection
//! batch, however many requests wait, instead of a poll loop per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tributary_store::accounts::{self, MembershipRow, SessionRow};
use tributary_store::queries::{self, CommandRow, OrgRow};
use tributary_store::{Db, Result};
use uuid::Uuid;

/// The longest a waiter depends on a notice: after this it is looked up anyway.
pub const SWEEP: Duration = Duration::from_millis(500);

type Ready<R> = Box<dyn Fn(&R) -> bool + Send>;
type Waiting<R> = HashMap<Uuid, Vec<(Ready<R>, oneshot::Sender<R>)>>;

/// Waiters for rows of one kind, keyed by the row's id.
pub struct Awaiting<R> {
    waiting: Mutex<Waiting<R>>,
}

impl<R: Clone> Default for Awaiting<R> {
    fn default() -> Self {
        Self {
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<R: Clone> Awaiting<R> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting<R>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers interest in row `id` until `ready` holds for it.
    pub fn register(
        &self,
        id: Uuid,
        ready: impl Fn(&R) -> bool + Send + 'static,
    ) -> oneshot::Receiver<R> {
        let (tx, rx) = oneshot::channel();
        self.lock()
            .entry(id)
            .or_default()
            .push((Box::new(ready), tx));
        rx
    }

    /// The ids someone still waits for; drops waiters that gave up.
    pub fn ids(&self) -> Vec<Uuid> {
        let mut waiting = self.lock();
        waiting.retain(|_, list| {
            list.retain(|(_, tx)| !tx.is_closed());
            !list.is_empty()
        });
        waiting.keys().copied().collect()
    }

    /// Hands each row to the waiters it satisfies.
    pub fn resolve(&self, rows: impl IntoIterator<Item = (Uuid, R)>) {
        let mut waiting = self.lock();
        for (id, row) in rows {
            let Some(list) = waiting.get_mut(&id) else {
                continue;
            };
            let (done, left): (Vec<_>, Vec<_>) = std::mem::take(list)
                .into_iter()
                .partition(|(ready, _)| ready(&row));
            for (_, tx) in done {
                let _ = tx.send(row.clone());
            }
            if left.is_empty() {
                waiting.remove(&id);
            } else {
                *list = left;
            }
        }
    }
}

/// Everything the API waits for.
#[derive(Default)]
pub struct Waiters {
    pub commands: Awaiting<CommandRow>,
    pub orgs: Awaiting<OrgRow>,
    pub sessions: Awaiting<SessionRow>,
    /// Keyed by user: a user's memberships, all of them.
    pub memberships: Awaiting<Vec<MembershipRow>>,
    /// Keyed by org: the org version the identity read model has applied.
    pub identity: Awaiting<i64>,
    /// Keyed by credential: the aggregate version the credentials read model shows.
    pub credentials: Awaiting<i64>,
    /// Keyed by target: the aggregate version the catalog read model shows.
    pub targets: Awaiting<i64>,
    /// Keyed by profile: the aggregate version the catalog read model shows.
    pub profiles: Awaiting<i64>,
}

impl Waiters {
    /// Starts the task that looks waiters up on every notice; it ends with the last
    /// `Arc` of the waiters.
    pub fn start(db: Db, mut notices: watch::Receiver<u64>) -> Arc<Self> {
        let waiters = Arc::new(Self::default());
        let weak = Arc::downgrade(&waiters);
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(SWEEP, notices.changed()).await;
                let Some(waiters) = weak.upgrade() else {
                    return;
                };
                if let Err(e) = waiters.sweep(&db).await {
                    tracing::debug!(error = %e, "looking up waiting requests failed; trying again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        waiters
    }

    async fn sweep(&self, db: &Db) -> Result<()> {
        let commands = self.commands.ids();
        let orgs = self.orgs.ids();
        let sessions = self.sessions.ids();
        let users = self.memberships.ids();
        let identity = self.identity.ids();
        let credentials = self.credentials.ids();
        let targets = self.targets.ids();
        let profiles = self.profiles.ids();
        if commands.is_empty()
            && orgs.is_empty()
            && sessions.is_empty()
            && users.is_empty()
            && identity.is_empty()
            && credentials.is_empty()
            && targets.is_empty()
            && profiles.is_empty()
        {
            return Ok(());
        }
        let client = db.get().await?;
        if !commands.is_empty() {
            let rows = queries::commands(&**client, &commands).await?;
            self.commands.resolve(rows.into_iter().map(|r| (r.id, r)));
        }
        if !orgs.is_empty() {
            let rows = queries::orgs_by_id(&**client, &orgs).await?;
            self.orgs.resolve(rows.into_iter().map(|r| (r.id, r)));
        }
        if !sessions.is_empty() {
            let rows = accounts::sessions(&**client, &sessions).await?;
            self.sessions.resolve(rows.into_iter().map(|r| (r.id, r)));
        }
        if !users.is_empty() {
            let rows = accounts::memberships_of(&**client, &users).await?;
            let mut per_user: HashMap<Uuid, Vec<MembershipRow>> = HashMap::new();
            for row in rows {
                per_user.entry(row.user_id).or_default().push(row);
            }
            self.memberships.resolve(per_user);
        }
        if !identity.is_empty() {
            let rows = accounts::org_versions(&**client, &identity).await?;
            self.identity.resolve(rows);
        }
        if !credentials.is_empty() {
            let rows = tributary_store::credentials::versions(&**client, &credentials).await?;
            self.credentials.resolve(rows);
        }
        if !targets.is_empty() {
            let rows = tributary_store::catalog::target_versions(&**client, &targets).await?;
            self.targets.resolve(rows);
        }
        if !profiles.is_empty() {
            let rows = tributary_store::catalog::profile_versions(&**client, &profiles).await?;
            self.profiles.resolve(rows);
        }
        Ok(())
    }

    /// Waits for `rx`, looking the row up once first: it may have landed before the
    /// waiter was registered.
    pub async fn wait<R>(rx: oneshot::Receiver<R>, now: Option<R>, wait: Duration) -> Option<R> {
        if now.is_some() {
            return now;
        }
        tokio::time::timeout(wait, rx).await.ok()?.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reaches_only_the_waiters_it_satisfies() {
        let awaiting = Awaiting::<i64>::default();
        let id = Uuid::now_v7();
        let mut low = awaiting.register(id, |v| *v >= 1);
        let mut high = awaiting.register(id, |v| *v >= 3);
        awaiting.resolve([(id, 2)]);
        assert_eq!(low.try_recv().unwrap(), 2);
        assert!(high.try_recv().is_err());
        assert_eq!(awaiting.ids(), vec![id]);
        awaiting.resolve([(id, 3)]);
        assert_eq!(high.try_recv().unwrap(), 3);
        assert!(awaiting.ids().is_empty());
    }

    #[test]
    fn waiters_that_gave_up_are_forgotten() {
        let awaiting = Awaiting::<i64>::default();
        let id = Uuid::now_v7();
        drop(awaiting.register(id, |_| true));
        assert!(awaiting.ids().is_empty());
    }
}
