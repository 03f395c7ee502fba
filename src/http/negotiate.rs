//! Content negotiation: which coding a client gets (`Accept-Encoding`), and the media type a
//! browser is given for a feed (`Accept`).

use axum::body::Body;
use axum::http::Response;
use axum::http::header::{self, HeaderMap, HeaderValue};

use crate::feed::Format;
use crate::site::{Encoding, Rendered};

/// The coding to send: brotli, then gzip, when the client accepts them (q > 0) and the document
/// is worth compressing; identity otherwise. Every `Accept-Encoding` line counts; nothing is
/// allocated, however many codings a client lists.
pub fn negotiate(headers: &HeaderMap, r: &Rendered) -> Encoding {
    if !r.compressible() {
        return Encoding::Identity;
    }
    let (mut br, mut gzip, mut star) = (None::<f32>, None::<f32>, None::<f32>);
    let lines = headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok());
    for part in lines.flat_map(|v| v.split(',')) {
        let mut bits = part.split(';');
        let coding = bits.next().unwrap_or("").trim();
        let q = || {
            bits.filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0)
        };
        if coding.eq_ignore_ascii_case("br") {
            br = Some(q());
        } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q());
        } else if coding == "*" {
            star = Some(q());
        }
    }
    let br = br.or(star).unwrap_or(0.0);
    let gzip = gzip.or(star).unwrap_or(0.0);
    if br > 0.0 && br >= gzip {
        Encoding::Brotli
    } else if gzip > 0.0 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// Browsers show `application/rss+xml` and `application/atom+xml` as plain text, but apply the
/// feed's stylesheet to XML: a request that asks for HTML (a browser's navigation) gets the same
/// bytes as `application/xml`. Feed readers do not ask for HTML and keep the feed types.
pub fn for_browsers(headers: &HeaderMap, format: Format, mut res: Response<Body>) -> Response<Body> {
    if format == Format::Json {
        return res;
    }
    let h = res.headers_mut();
    h.append(header::VARY, HeaderValue::from_static("Accept"));
    let wants_html = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|m| {
            let mut parts = m.split(';');
            let ty = parts.next().unwrap_or("").trim();
            let refused = parts.any(
                |p| matches!(p.trim().strip_prefix("q="), Some(q) if q.trim().parse::<f32>().is_ok_and(|q| q == 0.0)),
            );
            ty.eq_ignore_ascii_case("text/html") && !refused
        })
    });
    if wants_html && h.contains_key(header::CONTENT_TYPE) {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml; charset=utf-8"));
    }
    res
}
