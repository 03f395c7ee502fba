//! Restarts and the feeds saved at a clean stop: an unchanged restart serves the saved bytes
//! without rendering anything; changes made while stopped are still picked up; a crash leaves no
//! saved feeds to be trusted.

use crate::support::*;

fn clip(n: usize, title: &str) -> String {
    let topic = ["Robots", "Energy", "Space"][n % 3];
    format!(
        "---\ntitle: \"{title}\"\nexcerpt: Item {n} of the restart test.\npublishedDateTime: 2025-04-{:02}T08:00:00Z\nwebUrl: https://restart.example/{n}\nprovider:\n  name: Restart Daily\n  domain: restart.example\ntopics: [{topic}]\n---\nBody of item {n}.\n",
        n % 28 + 1
    )
}

const URLS: [&str; 7] = [
    "feed.rss",
    "feed.atom",
    "feed.json",
    "topics/robots.atom",
    "topics/energy.json",
    "providers/restart.example.rss",
    "feeds.opml",
];

/// (ETag, Last-Modified, body) of every URL.
fn served(d: &Daemon) -> Vec<(Option<String>, Option<String>, Vec<u8>)> {
    URLS.iter()
        .map(|u| {
            let r = get(&d.url(u), &[]);
            assert_eq!(r.status, 200, "{u}");
            (r.header("etag").map(String::from), r.header("last-modified").map(String::from), r.body)
        })
        .collect()
}

/// A daemon over `n` clippings titled "`word` item N", once all of them are served.
fn started_with(n: usize, word: &str) -> (Site, Daemon) {
    let site = Site::new();
    for i in 0..n {
        site.put(&format!("c{i}.md"), clip(i, &format!("{word} item {i}")));
    }
    let d = Daemon::start(&site);
    poll("every clipping served", || (titles(&feed(&d.url("feed.atom?limit=500"))).len() == n).then_some(()));
    (site, d)
}

fn saved_feeds_used(d: &Daemon) -> bool {
    d.log().contains("serving the feeds saved at the last stop")
}

#[test]
fn an_unchanged_restart_serves_the_saved_feeds_without_rendering() {
    let (site, d) = started_with(30, "Restart");
    let before = served(&d);
    assert!(!saved_feeds_used(&d), "a first start has nothing saved");
    assert!(d.stop().success());
    // The saved feeds went through the WAL; a clean stop leaves the store as its database alone.
    let wal = site.root().parent().unwrap().join("data/clipfeed.db-wal");
    let wal_bytes = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert_eq!(wal_bytes, 0, "{} after a clean stop", wal.display());

    // A setting that cannot change a feed (a metrics token) keeps the saved feeds valid.
    site.write_config("metrics:\n  token: a-long-enough-metrics-token\n");
    let mut d = Daemon::start(&site);
    d.operator = Some("a-long-enough-metrics-token".into());
    assert!(saved_feeds_used(&d), "log:\n{}", d.log());
    assert_eq!(d.counter("renders"), 0, "nothing changed, so nothing is rendered");
    let after = served(&d);
    for (u, (a, b)) in URLS.iter().zip(before.iter().zip(&after)) {
        assert_eq!(a.0, b.0, "{u}: ETag");
        assert_eq!(a.1, b.1, "{u}: Last-Modified");
        assert!(a.2 == b.2, "{u}: bytes differ after restart");
    }
    // The saved feeds still answer conditional requests and filtered views.
    let etag = after[1].0.clone().unwrap();
    assert_eq!(get(&d.url("feed.atom"), &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(titles(&feed(&d.url("topics/robots.atom?q=item"))).len(), 10);
    assert!(d.stop().success());
}

#[test]
fn changes_made_while_stopped_replace_the_saved_feeds() {
    let (site, d) = started_with(12, "Stopped");
    assert!(d.stop().success());

    // While stopped: one edited, one deleted, one added.
    site.put("c0.md", clip(0, "Stopped item 0, edited"));
    std::fs::remove_file(site.root().join("c1.md")).unwrap();
    site.put("c99.md", clip(99, "Stopped item 99"));
    let d = Daemon::start(&site);
    assert!(saved_feeds_used(&d));
    let all = titles(&feed(&d.url("feed.atom?limit=500")));
    assert!(all.contains(&"Stopped item 0, edited".to_string()), "{all:?}");
    assert!(!all.contains(&"Stopped item 0".to_string()), "{all:?}");
    assert!(!all.contains(&"Stopped item 1".to_string()), "{all:?}");
    assert!(all.contains(&"Stopped item 99".to_string()), "{all:?}");
    assert_eq!(all.len(), 12);
    // The subscription documents are the new ones, not the saved ones.
    let plain = titles(&feed(&d.url("feed.rss")));
    assert!(plain.contains(&"Stopped item 99".to_string()) && !plain.contains(&"Stopped item 1".to_string()));
    assert!(d.stop().success());
}

#[test]
fn after_a_crash_or_a_new_configuration_the_feeds_are_rendered_again() {
    let (site, d) = started_with(6, "Crash");
    assert!(d.stop().success());

    // The saved feeds are used once: a crash after that start leaves nothing trusted.
    let d = Daemon::start(&site);
    assert!(saved_feeds_used(&d));
    d.signal(libc::SIGKILL);
    assert!(!d.wait_exit().success());
    let d = Daemon::start(&site);
    assert!(!saved_feeds_used(&d), "saved feeds reused after a crash; log:\n{}", d.log());
    assert!(d.counter("renders") > 0);
    assert_eq!(titles(&feed(&d.url("feed.atom"))).len(), 6);
    assert!(d.stop().success());

    // A new title in the configuration: the saved feeds are not served.
    site.write_config("");
    std::fs::write(site.config(), std::fs::read_to_string(site.config()).unwrap().replace("Test Clippings", "Renamed"))
        .unwrap();
    let d = Daemon::start(&site);
    assert!(!saved_feeds_used(&d));
    assert_eq!(feed(&d.url("feed.atom")).title.unwrap().content, "Renamed");
    assert!(d.stop().success());
}
