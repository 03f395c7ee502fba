//! Privacy and the operators' endpoints, by values: `/api/status` follows the `/metrics` rule
//! and quotes no file's value nor any absolute path; an unauthorised private feed answers like
//! a missing one; what the public sees does not move when only private clippings do; a reload
//! (or a start) never loosens privacy by accident.

use crate::support::{Daemon, Site, get, poll};

/// A clipping file with a title, a link and extra front-matter lines.
fn clip(key: &str, title: &str, more: &str) -> String {
    format!(
        "---\ntitle: \"{title}\"\npublishedDateTime: 2025-04-01T10:00:00Z\nwebUrl: https://news.example/{key}\n{more}---\nBody of {title}.\n"
    )
}

#[test]
fn status_is_for_operators_and_names_fields_not_values() {
    let site = Site::new();
    site.write_config("metrics:\n  token: an-operator-token-16\n");
    site.put("ok.md", clip("ok", "Fine clipping", ""));
    site.put(
        "hidden/board-minutes.md",
        clip("bad", "Refused", "quality: \"SECRET acme takeover at 40 dollars a share\"\n"),
    );
    let mut d = Daemon::start(&site);
    // Anyone may ask whether it is alive and ready; the status needs the operator's token.
    assert_eq!(get(&d.url("healthz"), &[]).status, 200);
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
    for headers in [vec![], vec![("Authorization", "Bearer not-the-operator-token")]] {
        let r = get(&d.url("api/status"), &headers);
        assert_eq!(r.status, 401, "{headers:?}");
        assert!(!r.text().contains("board-minutes") && !r.text().contains("SECRET"), "{}", r.text());
    }
    d.operator = Some("an-operator-token-16".into());
    let status = poll("the rejection in the status", || {
        let s = d.status();
        (s["rejected_total"] == 1).then_some(s)
    });
    let rejected = &status["rejected"][0];
    assert_eq!(rejected["path"], "hidden/board-minutes.md", "relative to its root");
    assert_eq!(rejected["root"], "clippings", "the root as the configuration writes it");
    let reason = rejected["reason"].as_str().unwrap();
    assert!(reason.contains("quality") && reason.contains("expected i64"), "{reason}");
    let text = status.to_string();
    assert!(!text.contains("SECRET") && !text.contains("acme") && !text.contains("40 dollars"), "{text}");
    let abs = site.dir.path().to_string_lossy().into_owned();
    assert!(!text.contains(&abs), "the status shows where the files are: {text}");
    assert!(!d.log().contains("SECRET acme"), "nor does the log quote the value");
    drop(d);

    // Another network only: loopback is refused the status as it is the metrics.
    site.write_config("metrics:\n  allow: [10.0.0.0/8]\n");
    let d = Daemon::start(&site);
    assert_eq!(get(&d.url("api/status"), &[]).status, 403);
    assert_eq!(get(&d.url("metrics"), &[]).status, 403);
    assert_eq!(get(&d.url("readyz"), &[]).status, 200);
}
