//! Who may read what: the token of a private feed (`?token=` or `Authorization: Bearer`,
//! compared in constant time, never logged; without it a private feed answers as a missing one),
//! and the operators' rule for `/metrics` and `/api/status` (a client address in
//! `metrics.allow`, plus the bearer token `metrics.token` when one is set). The
//! client address is the one `client` resolved, so behind a trusted proxy it is the real
//! client's, never the proxy's.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Response, StatusCode};

use super::client::Client;
use super::respond::{not_found, plain};
use crate::config::Config;
use crate::site::Site;

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

/// Compares secrets in time that depends only on their lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Splits `token=` off a query string: (the token, the rest).
pub fn take_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let mut rest = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k == "token" {
            token = Some(v.into_owned());
        } else {
            rest.append_pair(&k, &v);
        }
    }
    (token, rest.finish())
}

/// For a private feed: the token from `?token=` or `Authorization: Bearer` must match. `None`
/// when the request may go on; else the answer a feed that does not exist gets (same status,
/// headers and body, `Cache-Control: no-store` on both), so a private feed's name cannot be
/// told from a missing one. Tokens are never logged.
pub fn refused(site: &Site, stem: &str, headers: &HeaderMap, token: Option<&str>) -> Option<Response<Body>> {
    let expected = site.private.get(stem)?;
    let given = token.or_else(|| bearer(headers));
    if given.is_some_and(|g| same(g.as_bytes(), expected.as_bytes())) {
        return None;
    }
    Some(not_found())
}

/// The operators' rule (`/metrics`): `None` when the client may read, else the 403 or 401 to
/// send. An unknown client address is refused.
pub fn operator_refused(cfg: &Config, client: Client, headers: &HeaderMap) -> Option<Response<Body>> {
    if !client.addr.is_some_and(|ip| cfg.metrics_allow.iter().any(|n| n.contains(ip))) {
        return Some(plain(StatusCode::FORBIDDEN, "not served to this address\n".into()));
    }
    if let Some(token) = &cfg.metrics_token
        && !bearer(headers).is_some_and(|given| same(given.as_bytes(), token.as_bytes()))
    {
        let mut res = plain(StatusCode::UNAUTHORIZED, "a bearer token is required\n".into());
        res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"clipfeed\""));
        return Some(res);
    }
    None
}
