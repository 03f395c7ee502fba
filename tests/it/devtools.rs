//! Headless Chromium driven over the Chrome DevTools Protocol on a pipe (`--remote-debugging-pipe`:
//! JSON messages separated by NUL bytes, the browser reading descriptor 3 and writing 4), so a test
//! can load a page at a phone's size and measure its layout, as the page is, with no script or
//! parameter added to it: `Runtime.evaluate` runs in the page from outside, whatever its
//! `Content-Security-Policy` allows.
//!
//! The two descriptors are set up by the shell that starts Chromium (`exec 3<&0 4>&1 1>&2`):
//! its standard input and output are our pipes, and the browser's own standard output goes to
//! its standard error.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::DEADLINE;

pub struct Devtools {
    child: Child,
    to_browser: ChildStdin,
    from_browser: Receiver<Value>,
    next_id: u64,
    stderr: tempfile::NamedTempFile,
    _profile: tempfile::TempDir,
}

impl Devtools {
    /// Starts Chromium headless, XSLT disabled, with a fresh profile.
    pub fn start() -> Devtools {
        let profile = tempfile::tempdir().expect("profile dir");
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut cmd = Command::new("bash");
        cmd.args(["-c", "exec 3<&0 4>&1 1>&2; exec chromium \"$@\"", "chromium"])
            .args(super::browser::CHROMIUM_FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("--remote-debugging-pipe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("stderr file"));
        let mut child = cmd.spawn().expect("start chromium");
        let to_browser = child.stdin.take().expect("pipe to chromium");
        let out = child.stdout.take().expect("pipe from chromium");
        let (tx, from_browser) = channel();
        std::thread::spawn(move || {
            for message in BufReader::new(out).split(0) {
                let Ok(bytes) = message else { break };
                let Ok(value) = serde_json::from_slice::<Value>(&bytes) else { continue };
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        Devtools { child, to_browser, from_browser, next_id: 0, stderr, _profile: profile }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Sends one command (to a page's session when given) and returns its result.
    #[track_caller]
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        if let Err(e) = self.to_browser.write_all(&bytes) {
            panic!("chromium closed its pipe ({e}) before {method}:\n{}", self.stderr());
        }
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = match self.from_browser.recv_timeout(left) {
                Ok(reply) => reply,
                Err(_) => panic!("no answer from chromium to {method} within {DEADLINE:?}:\n{}", self.stderr()),
            };
            if reply["id"] != json!(id) {
                continue; // an event, or the answer to an earlier command
            }
            if let Some(error) = reply.get("error") {
                panic!("chromium refused {method} {message}: {error}");
            }
            return reply["result"].clone();
        }
    }

    /// Opens `url` in a new page of `width` × `height` CSS pixels, emulating a phone (its
    /// `<meta name="viewport">` applies), and waits until it has loaded. Returns the page's
    /// session.
    pub fn open(&mut self, url: &str, width: u32, height: u32) -> String {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target = target["targetId"].as_str().expect("a target id").to_string();
        let attached = self.call(None, "Target.attachToTarget", json!({"targetId": target, "flatten": true}));
        let session = attached["sessionId"].as_str().expect("a session id").to_string();
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": true});
        self.call(Some(&session), "Emulation.setDeviceMetricsOverride", metrics);
        let nav = self.call(Some(&session), "Page.navigate", json!({"url": url}));
        assert!(nav.get("errorText").is_none(), "chromium could not open {url}: {nav}");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let state = self.eval(&session, "document.readyState + ' ' + location.href");
            let state = state.as_str().unwrap_or("").to_string();
            if state.starts_with("complete ") && state != "complete about:blank" {
                return session;
            }
            assert!(Instant::now() < deadline, "{url} did not load: {state}");
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
    }

    /// The value of a JavaScript expression in the page.
    #[track_caller]
    pub fn eval(&mut self, session: &str, expression: &str) -> Value {
        let result =
            self.call(Some(session), "Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        assert!(result.get("exceptionDetails").is_none(), "{expression} threw: {result}");
        result["result"]["value"].clone()
    }
}

impl Drop for Devtools {
    /// Asks the browser to close (it takes its helper processes with it), then makes sure.
    fn drop(&mut self) {
        let _ = self.to_browser.write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20)); // poll interval
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
