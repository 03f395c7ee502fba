//! clipfeed's hub with a third-party subscriber: flask-websub (PyPI), driven through
//! `tests/tools/websub_subscriber.py`. It discovers the hub from the feed's `Link` headers,
//! subscribes, is verified, receives new clippings' feeds, keeps its subscription over a
//! restart, and after unsubscribing receives nothing. flask-websub sends secrets to https hubs
//! only, so it subscribes without one; `websub.rs` checks signatures with ring's HMAC.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use crate::support::*;
use crate::websub::{Callback, clip, hub_post};

struct Subscriber {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Subscriber {
    fn start() -> Option<Subscriber> {
        let ok = Command::new("python3").args(["-c", "import flask_websub"]).output().is_ok_and(|o| o.status.success());
        if !ok {
            assert!(!validators_required(), "flask-websub is required (CLIPFEED_REQUIRE_VALIDATORS=1) but absent");
            eprintln!("NOTICE: flask-websub is absent (pip install flask-websub); skipping");
            return None;
        }
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/websub_subscriber.py");
        let mut child =
            Command::new("python3").arg(script).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
        let (input, output) = (child.stdin.take().unwrap(), BufReader::new(child.stdout.take().unwrap()));
        Some(Subscriber { child, input, output })
    }

    /// Sends a command and returns its answer line (the script has its own deadline).
    fn ask(&mut self, command: &str) -> String {
        writeln!(self.input, "{command}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        assert!(!line.starts_with("timeout") && !line.is_empty(), "`{command}`: {line:?}");
        line.trim().to_string()
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn flask_websub_subscribes_receives_survives_a_restart_and_unsubscribes() {
    let Some(mut sub) = Subscriber::start() else { return };
    let site = Site::new();
    // No base_url: links name the address the daemon listens on, which a restart keeps.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "listen: 127.0.0.1:{port}\nclippings: [clippings]\nstore: data/clipfeed.db\nwebsub:\n  enabled: true\n  allow_callbacks: [127.0.0.0/8]\n"
    );
    std::fs::write(site.config(), config).unwrap();
    site.put("a.md", clip(1, "Flask first", "Robots"));
    let d = Daemon::start(&site);
    let feed_url = d.url("topics/robots.atom");
    poll("served", || get(&feed_url, &[]).text().contains("Flask first").then_some(()));

    let answer = sub.ask(&format!("subscribe {feed_url}"));
    assert_eq!(answer, format!("subscribed {feed_url}"));
    // flask-websub reports success before its answer to the challenge reaches the hub.
    poll("the hub recorded it", || d.log().contains("websub: intent verified").then_some(()));
    site.put("b.md", clip(2, "Flask second", "Robots"));
    assert!(sub.ask("wait Flask second").starts_with("notified "));

    assert!(d.stop().success());
    let d = Daemon::start(&site);
    site.put("c.md", clip(3, "Flask third", "Robots"));
    assert!(sub.ask("wait Flask third").starts_with("notified "));

    // A second subscriber of our own shows when the next change went out.
    let witness = Callback::start("127.0.0.1");
    let topic = feed_url.as_str();
    assert_eq!(hub_post(&d, &[("hub.mode", "subscribe"), ("hub.topic", topic), ("hub.callback", &witness.url)]).0, 202);
    witness.wait("verified", |g| g.method == "GET");
    let before = sub.ask("count");
    assert_eq!(sub.ask("unsubscribe"), "unsubscribed");
    poll("both verifications done", || (d.log().matches("websub: intent verified").count() >= 2).then_some(()));
    site.put("d.md", clip(4, "Flask fourth", "Robots"));
    witness.wait("the witness's delivery", |g| String::from_utf8_lossy(&g.body).contains("Flask fourth"));
    assert_eq!(sub.ask("count"), before, "nothing after unsubscribing");
}
