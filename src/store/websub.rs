//! The WebSub subscriptions table: the store's copy of the hub's verified subscriptions, so they
//! survive restarts. The hub owns the rules (leases, limits); this file only keeps what it
//! reports (`crate::websub::Change`) and hands it back at start. The table is not among those a
//! store rebuild drops: subscriptions come from subscribers, not from the clippings.

use anyhow::Result;
use rusqlite::params;

use super::Batch;
use crate::websub::{Change, Subscription};

// Used once the daemon wires the hub in (issue 16); drop the allow then.
#[allow(dead_code)]
impl Batch<'_> {
    /// Inserts a subscription, or replaces the one with the same topic and callback.
    pub(crate) fn websub_upsert(&self, sub: &Subscription) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO websub_subscriptions(topic, callback, secret, expires) VALUES(?1, ?2, ?3, ?4)
                 ON CONFLICT(topic, callback) DO UPDATE SET secret=excluded.secret, expires=excluded.expires",
            )?
            .execute(params![sub.topic, sub.callback, sub.secret, sub.expires as i64])?;
        Ok(())
    }

    /// Deletes a subscription, if there is one.
    pub(crate) fn websub_delete(&self, topic: &str, callback: &str) -> Result<()> {
        self.tx
            .prepare_cached("DELETE FROM websub_subscriptions WHERE topic=?1 AND callback=?2")?
            .execute([topic, callback])?;
        Ok(())
    }

    /// Applies one change the hub reported.
    pub(crate) fn websub_apply(&self, change: &Change) -> Result<()> {
        match change {
            Change::Put(sub) => self.websub_upsert(sub),
            Change::Remove { topic, callback } => self.websub_delete(topic, callback),
        }
    }

    /// Deletes the subscriptions whose lease ended by `now` (Unix seconds); how many.
    pub(crate) fn websub_expire(&self, now: u64) -> Result<usize> {
        let n =
            self.tx.prepare_cached("DELETE FROM websub_subscriptions WHERE expires <= ?1")?.execute([now as i64])?;
        Ok(n)
    }

    /// The subscriptions to one topic, by callback.
    pub(crate) fn websub_by_topic(&self, topic: &str) -> Result<Vec<Subscription>> {
        self.websub_query("WHERE topic=?1 ORDER BY callback", params![topic])
    }

    /// Every subscription whose lease runs past `now`, for the hub's start; the ended ones are
    /// deleted.
    pub(crate) fn websub_subscriptions(&self, now: u64) -> Result<Vec<Subscription>> {
        self.websub_expire(now)?;
        self.websub_query("ORDER BY topic, callback", params![])
    }

    fn websub_query(&self, tail: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<Subscription>> {
        let sql = format!("SELECT topic, callback, secret, expires FROM websub_subscriptions {tail}");
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(args, |r| {
            Ok(Subscription {
                topic: r.get(0)?,
                callback: r.get(1)?,
                secret: r.get(2)?,
                expires: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::websub::{Change, Subscription};

    fn sub(topic: &str, callback: &str, secret: Option<&str>, expires: u64) -> Subscription {
        Subscription { topic: topic.into(), callback: callback.into(), secret: secret.map(Into::into), expires }
    }

    #[test]
    fn subscriptions_round_trip_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let mut store = Store::open(&path).unwrap();
            let b = store.batch().unwrap();
            b.websub_apply(&Change::Put(sub("http://x/a", "http://cb/1", Some("s"), 100))).unwrap();
            b.websub_apply(&Change::Put(sub("http://x/a", "http://cb/2", None, 50))).unwrap();
            b.websub_apply(&Change::Put(sub("http://x/b", "http://cb/1", None, 200))).unwrap();
            // A renewal replaces secret and lease.
            b.websub_apply(&Change::Put(sub("http://x/a", "http://cb/1", None, 300))).unwrap();
            b.websub_apply(&Change::Remove { topic: "http://x/b".into(), callback: "http://cb/1".into() }).unwrap();
            b.commit().unwrap();
        }
        let mut store = Store::open(&path).unwrap();
        let b = store.batch().unwrap();
        assert_eq!(
            b.websub_by_topic("http://x/a").unwrap(),
            [sub("http://x/a", "http://cb/1", None, 300), sub("http://x/a", "http://cb/2", None, 50)]
        );
        assert_eq!(b.websub_subscriptions(50).unwrap(), [sub("http://x/a", "http://cb/1", None, 300)]);
        assert_eq!(b.websub_expire(1000).unwrap(), 1);
        assert!(b.websub_subscriptions(0).unwrap().is_empty());
    }
}
