//! Subscription requests: the `application/x-www-form-urlencoded` body a subscriber POSTs to the
//! hub, read into a [`SubRequest`] or refused with a status and a plain-text reason (WebSub
//! §5.1). Only the request's shape is checked here; whether the topic is a feed of ours, and
//! whether the callback's address may be reached, are decided by the hub and the policy.

use url::Url;

/// The largest request body read: two URLs of [`MAX_URL_BYTES`] percent-encoded, a secret and
/// the rest fit.
pub const MAX_FORM_BYTES: usize = 16 * 1024;
/// The longest callback or topic URL, decoded.
pub const MAX_URL_BYTES: usize = 2048;
/// `hub.secret` "MUST be less than 200 bytes in length" (WebSub §5.1).
pub const MAX_SECRET_BYTES: usize = 199;

/// What a subscriber asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Subscribe,
    Unsubscribe,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Subscribe => "subscribe",
            Mode::Unsubscribe => "unsubscribe",
        }
    }
}

/// A well-formed subscription or unsubscription request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubRequest {
    pub mode: Mode,
    /// Normalised: the form the hub compares with the feeds' self URLs.
    pub topic: String,
    /// Without a fragment; its query string is kept.
    pub callback: Url,
    /// The lease asked for, in seconds (ignored for unsubscribe).
    pub lease_seconds: Option<u64>,
    pub secret: Option<String>,
}

/// A refused request: the status to answer with and why, for the subscriber's developer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> Refusal {
    Refusal { status: 400, reason: reason.into() }
}

/// Reads a request body sent with `content_type`.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<SubRequest, Refusal> {
    let essence = content_type.unwrap_or("").split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(Refusal { status: 415, reason: "send the request as application/x-www-form-urlencoded".into() });
    }
    if body.len() > MAX_FORM_BYTES {
        return Err(Refusal { status: 413, reason: format!("the request body is over {MAX_FORM_BYTES} bytes") });
    }
    let mut fields: [Option<String>; 5] = Default::default();
    const NAMES: [&str; 5] = ["hub.mode", "hub.topic", "hub.callback", "hub.lease_seconds", "hub.secret"];
    for (name, value) in url::form_urlencoded::parse(body) {
        // Unknown parameters MUST be ignored (WebSub §5.1).
        let Some(i) = NAMES.iter().position(|n| *n == name) else { continue };
        if value.contains('\u{FFFD}') {
            return Err(bad(format!("{name} is not UTF-8")));
        }
        if fields[i].replace(value.into_owned()).is_some() {
            return Err(bad(format!("{name} is given more than once")));
        }
    }
    let [mode, topic, callback, lease, secret] = fields.map(|f| f.filter(|v| !v.is_empty()));
    let mode = match mode.as_deref() {
        Some("subscribe") => Mode::Subscribe,
        Some("unsubscribe") => Mode::Unsubscribe,
        Some("publish") => return Err(bad("this hub publishes its own feeds only: hub.mode=publish is not taken")),
        Some(other) => return Err(bad(format!("hub.mode {other:?} is neither subscribe nor unsubscribe"))),
        None => return Err(bad("hub.mode is missing")),
    };
    let topic = url_param("hub.topic", topic)?;
    let mut callback = url_param("hub.callback", callback)?;
    if callback.scheme() != "http" && callback.scheme() != "https" {
        return Err(bad("hub.callback must be an http or https URL"));
    }
    if !callback.username().is_empty() || callback.password().is_some() {
        return Err(bad("hub.callback must not carry a user name or password"));
    }
    callback.set_fragment(None);
    let lease_seconds = match (mode, lease) {
        (Mode::Subscribe, Some(l)) => Some(lease_value(&l)?),
        _ => None,
    };
    if secret.as_ref().is_some_and(|s| s.len() > MAX_SECRET_BYTES) {
        return Err(bad(format!(
            "hub.secret must be less than 200 bytes (WebSub §5.1); it has {}",
            secret.unwrap().len()
        )));
    }
    Ok(SubRequest { mode, topic: topic.to_string(), callback, lease_seconds, secret })
}

/// A URL parameter, with its percent-encoded unreserved characters decoded (WebSub §5.1.1).
fn url_param(name: &str, value: Option<String>) -> Result<Url, Refusal> {
    let value = value.ok_or_else(|| bad(format!("{name} is missing")))?;
    let value = decode_unreserved(value.trim());
    if value.len() > MAX_URL_BYTES {
        return Err(bad(format!("{name} is longer than {MAX_URL_BYTES} bytes")));
    }
    let url = Url::parse(&value).map_err(|e| bad(format!("{name} is not an absolute URL: {e}")))?;
    if url.host().is_none() {
        return Err(bad(format!("{name} has no host")));
    }
    Ok(url)
}

/// A topic URL in the form subscriptions are kept under: serialised by the URL Standard (host
/// lowercased, default port dropped, `/` for an empty path) with its percent-encoded unreserved
/// characters decoded. The topic predicate is asked about this form, and published documents'
/// topics are put in it, so both sides compare equal.
pub fn normalize_topic(text: &str) -> Option<String> {
    Url::parse(&decode_unreserved(text.trim())).ok().map(String::from)
}

/// A lease as "a positive decimal integer"; a huge one is clamped later, like any other.
fn lease_value(text: &str) -> Result<u64, Refusal> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("hub.lease_seconds {text:?} is not a positive decimal integer")));
    }
    Ok(text.parse::<u64>().unwrap_or(u64::MAX))
}

/// Decodes `%XX` escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) and upper-cases the
/// hex digits of the rest, so that equal URLs compare equal.
pub fn decode_unreserved(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (b.get(i + 1).and_then(|c| hex(*c)), b.get(i + 2).and_then(|c| hex(*c)))
        {
            let c = (h * 16 + l) as u8;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                out.push(c as char);
            } else {
                out.push_str(&format!("%{c:02X}"));
            }
            i += 3;
            continue;
        }
        let ch = s[i..].chars().next().expect("inside the string");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=UTF-8");

    fn ok(body: &str) -> SubRequest {
        parse(FORM, body.as_bytes()).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    #[track_caller]
    fn refused(ct: Option<&str>, body: &[u8], status: u16, needle: &str) {
        let err = parse(ct, body).unwrap_err();
        assert_eq!(err.status, status, "{err:?}");
        assert!(err.reason.contains(needle), "{err:?}");
    }

    #[test]
    fn subscribe_with_everything() {
        let r = ok("hub.mode=subscribe&hub.topic=http%3A%2F%2FExample.org%2Ffeeds%2F%7Ea.atom\
                    &hub.callback=https%3A%2F%2Fsub.example%2Fcb%3Fid%3D1%23frag&hub.lease_seconds=3600\
                    &hub.secret=s3cret&hub.verify=sync&other=1");
        assert_eq!(r.mode, Mode::Subscribe);
        assert_eq!(r.topic, "http://example.org/feeds/~a.atom");
        assert_eq!(r.callback.as_str(), "https://sub.example/cb?id=1");
        assert_eq!(r.lease_seconds, Some(3600));
        assert_eq!(r.secret.as_deref(), Some("s3cret"));
    }

    #[test]
    fn unsubscribe_ignores_the_lease() {
        let r = ok("hub.mode=unsubscribe&hub.topic=http://a/t&hub.callback=http://b/c&hub.lease_seconds=x");
        assert_eq!((r.mode, r.lease_seconds, r.secret), (Mode::Unsubscribe, None, None));
        assert_eq!(ok("hub.mode=subscribe&hub.topic=http://a/t&hub.callback=http://b/c&hub.secret=").secret, None);
        let huge = ok(
            "hub.mode=subscribe&hub.topic=http://a/t&hub.callback=http://b/c&hub.lease_seconds=99999999999999999999999",
        );
        assert_eq!(huge.lease_seconds, Some(u64::MAX));
    }

    #[test]
    fn refusals_say_why() {
        let base = "hub.topic=http://a/t&hub.callback=http://b/c";
        refused(Some("text/plain"), b"hub.mode=subscribe", 415, "x-www-form-urlencoded");
        refused(None, b"", 415, "x-www-form-urlencoded");
        refused(FORM, &vec![b'a'; MAX_FORM_BYTES + 1], 413, "over");
        refused(FORM, base.as_bytes(), 400, "hub.mode is missing");
        refused(FORM, format!("hub.mode=publish&{base}").as_bytes(), 400, "publish");
        refused(FORM, format!("hub.mode=sub&{base}").as_bytes(), 400, "neither");
        refused(FORM, b"hub.mode=subscribe&hub.callback=http://b/c", 400, "hub.topic is missing");
        refused(FORM, b"hub.mode=subscribe&hub.topic=http://a/t", 400, "hub.callback is missing");
        refused(FORM, b"hub.mode=subscribe&hub.topic=/t&hub.callback=http://b/c", 400, "hub.topic is not an absolute");
        refused(FORM, b"hub.mode=subscribe&hub.topic=http://a/t&hub.callback=ftp://b/c", 400, "http or https");
        refused(FORM, b"hub.mode=subscribe&hub.topic=http://a/t&hub.callback=http://u:p@b/c", 400, "password");
        refused(FORM, format!("hub.mode=subscribe&{base}&hub.topic=http://a/u").as_bytes(), 400, "more than once");
        refused(FORM, format!("hub.mode=subscribe&{base}&hub.lease_seconds=-5").as_bytes(), 400, "positive");
        refused(FORM, format!("hub.mode=subscribe&{base}&hub.secret={}", "s".repeat(200)).as_bytes(), 400, "200 bytes");
        refused(FORM, format!("hub.mode=subscribe&{base}&hub.secret=%FF").as_bytes(), 400, "UTF-8");
        let long =
            format!("hub.mode=subscribe&hub.topic=http://a/t&hub.callback=http://b/{}", "c".repeat(MAX_URL_BYTES));
        refused(FORM, long.as_bytes(), 400, "longer than");
        assert!(parse(FORM, format!("hub.mode=subscribe&{base}&hub.secret={}", "s".repeat(199)).as_bytes()).is_ok());
    }

    #[test]
    fn topics_compare_in_one_form() {
        assert_eq!(
            normalize_topic("HTTP://Feeds.Example:80/%7Ea.atom").as_deref(),
            Some("http://feeds.example/~a.atom")
        );
        assert_eq!(normalize_topic("https://f.example").as_deref(), Some("https://f.example/"));
        assert_eq!(normalize_topic("not a url"), None);
        let r = ok("hub.mode=subscribe&hub.topic=HTTP://Feeds.Example:80/%257Ea.atom&hub.callback=http://b/c");
        assert_eq!(Some(r.topic), normalize_topic("http://feeds.example/~a.atom"));
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_others_normalised() {
        assert_eq!(decode_unreserved("a%7eb%41%2f%2F%zz%"), "a~bA%2F%2F%zz%");
        assert_eq!(decode_unreserved("é%C3%A9"), "é%C3%A9");
    }
}
