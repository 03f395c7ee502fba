//! Every answer tells the truth: If-Modified-Since after two changes within one second, `updated`
//! meaning edited, and a failing store that shows in status and metrics.

use std::time::Duration;

use crate::support::*;

fn clip(key: &str, title: &str, date: &str) -> String {
    format!("---\ntitle: \"{title}\"\npublishedDateTime: {date}\nwebUrl: https://news.example/{key}\n---\n")
}

/// Writes `title` into `a.md` and waits until the feed of everything shows it; returns the
/// feed's `Last-Modified` then.
fn edit_and_wait(site: &Site, d: &Daemon, title: &str) -> String {
    site.put("a.md", clip("a", title, "2024-05-01T10:00:00Z"));
    poll(&format!("{title} in the feed"), || {
        let r = get(&d.url("feed.atom"), &[]);
        (r.status == 200 && r.text().contains(title)).then(|| r.header("last-modified").unwrap().to_string())
    })
}

/// Two versions of a feed within one second share a `Last-Modified`. Once the clock has passed
/// that second the feed's date moves to a later one: a client holding the shared date gets the
/// current version once, then `304 Not Modified` again. Before, the date stayed ambiguous (and
/// every If-Modified-Since poll got the whole feed) until the feed's next change.
#[test]
fn an_ambiguous_last_modified_settles_at_a_later_second() {
    let site = Site::new();
    site.put("a.md", clip("a", "Version zero", "2024-05-01T10:00:00Z"));
    let d = Daemon::start(&site);
    let url = d.url("feed.atom");
    let mut shared = None;
    for attempt in 0..10 {
        // Start right after a second boundary, so both edits fit in the second.
        let sub = chrono::Utc::now().timestamp_subsec_millis();
        std::thread::sleep(Duration::from_millis(u64::from(1000 - sub))); // wait for the second boundary
        let first = edit_and_wait(&site, &d, &format!("Version {attempt}a"));
        let second = edit_and_wait(&site, &d, &format!("Version {attempt}b"));
        if first == second {
            shared = Some((second, format!("Version {attempt}b")));
            break;
        }
    }
    let (lm, title) = shared.expect("two changes within one second");
    // A client that saw the first version and holds the shared date is never told it is current.
    let held = get(&url, &[("If-Modified-Since", &lm)]);
    let moved = poll("the shared date to settle at a later second", || {
        let r = get(&url, &[("If-Modified-Since", &lm)]);
        let now = r.header("last-modified").map(str::to_string);
        match r.status {
            200 if now.as_deref() != Some(lm.as_str()) => Some(r),
            200 => None,
            s => panic!("a change hidden: {s} for If-Modified-Since {lm}"),
        }
    });
    assert_eq!(held.status, 200, "the second version is not hidden behind the shared date");
    assert!(moved.text().contains(&title), "the full answer is the current version");
    let new_lm = moved.header("last-modified").unwrap().to_string();
    let parse = |s: &str| httpdate::parse_http_date(s).unwrap();
    assert!(parse(&new_lm) > parse(&lm), "{new_lm} is after {lm}");
    // Then 304s again, for the new date, and the content did not change.
    assert_eq!(get(&url, &[("If-Modified-Since", &new_lm)]).status, 304);
    let again = get(&url, &[]);
    assert_eq!(again.header("last-modified"), Some(new_lm.as_str()), "the date stays put");
    assert_eq!(again.header("etag"), moved.header("etag"));
}
