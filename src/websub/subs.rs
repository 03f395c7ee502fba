//! The verified subscriptions, in memory: by (topic, callback), by topic for deliveries, and
//! counted per callback host for the limits. Sans-IO: times are Unix seconds handed in, and every
//! change the table makes is returned so that the hub can report it to whoever persists it.

use std::collections::{BTreeSet, HashMap};

/// One verified subscription, as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub topic: String,
    pub callback: String,
    pub secret: Option<String>,
    /// When the lease ends, in Unix seconds.
    pub expires: u64,
}

/// A change to persist: the store keeps a copy of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Insert, or replace the subscription with the same topic and callback.
    Put(Subscription),
    Remove {
        topic: String,
        callback: String,
    },
}

impl Change {
    fn removed(s: &Subscription) -> Change {
        Change::Remove { topic: s.topic.clone(), callback: s.callback.clone() }
    }
}

/// The host a callback's limits count under: its host name or address, lowercased.
pub fn host_of(callback: &str) -> String {
    url::Url::parse(callback).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default()
}

/// Why a new subscription does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Full {
    Hub,
    Host,
}

#[derive(Debug, Default)]
pub struct Table {
    subs: HashMap<(String, String), Subscription>,
    by_topic: HashMap<String, BTreeSet<String>>,
    per_host: HashMap<String, usize>,
    /// (expires, topic, callback), for the next expiry without a scan.
    by_expiry: BTreeSet<(u64, String, String)>,
}

impl Table {
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    pub fn get(&self, topic: &str, callback: &str) -> Option<&Subscription> {
        self.subs.get(&(topic.to_string(), callback.to_string()))
    }

    /// Whether one more subscription for `callback` on `topic` fits the limits (a renewal
    /// always does).
    pub fn room(&self, topic: &str, callback: &str, max_total: usize, max_per_host: usize) -> Result<(), Full> {
        if self.get(topic, callback).is_some() {
            return Ok(());
        }
        if self.subs.len() >= max_total {
            return Err(Full::Hub);
        }
        if self.per_host.get(&host_of(callback)).copied().unwrap_or(0) >= max_per_host {
            return Err(Full::Host);
        }
        Ok(())
    }

    /// Inserts or replaces; returns the change to persist.
    pub fn put(&mut self, sub: Subscription) -> Change {
        self.remove(&sub.topic, &sub.callback);
        *self.per_host.entry(host_of(&sub.callback)).or_default() += 1;
        self.by_topic.entry(sub.topic.clone()).or_default().insert(sub.callback.clone());
        self.by_expiry.insert((sub.expires, sub.topic.clone(), sub.callback.clone()));
        self.subs.insert((sub.topic.clone(), sub.callback.clone()), sub.clone());
        Change::Put(sub)
    }

    /// Removes a subscription; the change to persist if there was one.
    pub fn remove(&mut self, topic: &str, callback: &str) -> Option<(Subscription, Change)> {
        let sub = self.subs.remove(&(topic.to_string(), callback.to_string()))?;
        let host = host_of(callback);
        if let Some(n) = self.per_host.get_mut(&host) {
            *n -= 1;
            if *n == 0 {
                self.per_host.remove(&host);
            }
        }
        if let Some(set) = self.by_topic.get_mut(topic) {
            set.remove(callback);
            if set.is_empty() {
                self.by_topic.remove(topic);
            }
        }
        self.by_expiry.remove(&(sub.expires, sub.topic.clone(), sub.callback.clone()));
        let change = Change::removed(&sub);
        Some((sub, change))
    }

    /// The callbacks subscribed to `topic`.
    pub fn callbacks(&self, topic: &str) -> Vec<String> {
        self.by_topic.get(topic).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }

    pub fn has_subscribers(&self, topic: &str) -> bool {
        self.by_topic.contains_key(topic)
    }

    /// Removes every subscription whose lease has ended by `now`.
    pub fn expire(&mut self, now: u64) -> Vec<Change> {
        let due: Vec<(String, String)> =
            self.by_expiry.iter().take_while(|(at, _, _)| *at <= now).map(|(_, t, c)| (t.clone(), c.clone())).collect();
        due.iter().filter_map(|(t, c)| self.remove(t, c)).map(|(_, change)| change).collect()
    }

    /// When the next lease ends.
    pub fn next_expiry(&self) -> Option<u64> {
        self.by_expiry.first().map(|(at, _, _)| *at)
    }

    /// Removes every subscription whose topic `keep` rejects; returns them.
    pub fn remove_topics(&mut self, keep: impl Fn(&str) -> bool) -> Vec<(Subscription, Change)> {
        let gone: Vec<String> = self.by_topic.keys().filter(|t| !keep(t)).cloned().collect();
        let mut out = Vec::new();
        for topic in gone {
            for callback in self.callbacks(&topic) {
                out.extend(self.remove(&topic, &callback));
            }
        }
        out
    }

    /// Every subscription, ordered by topic and callback.
    #[cfg(test)]
    pub fn all(&self) -> Vec<Subscription> {
        let sorted: std::collections::BTreeMap<_, _> = self.subs.iter().collect();
        sorted.into_values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(topic: &str, callback: &str, expires: u64) -> Subscription {
        Subscription { topic: topic.into(), callback: callback.into(), secret: None, expires }
    }

    #[test]
    fn put_replace_remove_keep_the_indexes() {
        let mut t = Table::default();
        assert_eq!(t.put(sub("T", "http://A/1", 10)), Change::Put(sub("T", "http://A/1", 10)));
        t.put(sub("T", "http://a/2", 20));
        t.put(sub("U", "http://b/1", 30));
        // A renewal replaces: same key, new lease.
        t.put(sub("T", "http://A/1", 40));
        assert_eq!(t.len(), 3);
        assert_eq!(t.callbacks("T"), ["http://A/1", "http://a/2"]);
        assert_eq!(t.next_expiry(), Some(20));
        assert_eq!(t.room("V", "http://a/3", 10, 2), Err(Full::Host), "host counts are case-blind");
        assert_eq!(t.room("T", "http://a/2", 3, 2), Ok(()), "a renewal always fits");
        assert_eq!(t.room("V", "http://c/1", 3, 2), Err(Full::Hub));
        let (gone, change) = t.remove("T", "http://a/2").unwrap();
        assert_eq!(gone.expires, 20);
        assert_eq!(change, Change::Remove { topic: "T".into(), callback: "http://a/2".into() });
        assert!(t.remove("T", "http://a/2").is_none());
        assert_eq!(t.room("V", "http://a/3", 10, 2), Ok(()));
        assert_eq!(t.next_expiry(), Some(30));
    }

    #[test]
    fn expiry_removes_exactly_the_ended_leases() {
        let mut t = Table::default();
        for (i, at) in [5u64, 10, 15].into_iter().enumerate() {
            t.put(sub("T", &format!("http://h/{i}"), at));
        }
        assert!(t.expire(4).is_empty());
        let gone = t.expire(10);
        assert_eq!(gone.len(), 2);
        assert_eq!(t.callbacks("T"), ["http://h/2"]);
        assert_eq!(t.next_expiry(), Some(15));
        t.expire(100);
        assert!(!t.has_subscribers("T") && t.len() == 0 && t.next_expiry().is_none());
    }

    #[test]
    fn topics_can_be_revoked() {
        let mut t = Table::default();
        t.put(sub("http://x/f.atom?token=old", "http://h/1", 5));
        t.put(sub("http://x/g.atom", "http://h/2", 5));
        let gone = t.remove_topics(|topic| !topic.contains("token=old"));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0.callback, "http://h/1");
        assert_eq!(t.all(), [sub("http://x/g.atom", "http://h/2", 5)]);
    }
}
