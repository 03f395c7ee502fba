//! `/stories/{id}` (the HTML page of a story's coverage) and `/stories/{id}.{rss,atom,json}`
//! (its feeds). A story that ended in a merge answers 301 to the story that took its members,
//! at the same kind of URL. Made in the pages' lane from the all-feed's log, so a story of
//! private clippings only is not found.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Response, StatusCode};

use super::AppState;
use super::respond::{cache_control, html_headers, not_found, respond};
use super::work;
use crate::feed::Format;
use crate::views::{Lane, StoryAnswer};

/// Whether `id` is spelt like a story id (a UUID, lower-case hex).
fn valid_id(id: &str) -> bool {
    id.len() == 36 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// A story's page or feed; `file` is `{id}` or `{id}.{ext}`.
pub async fn story(state: AppState, headers: HeaderMap, file: String) -> Response<Body> {
    let (id, format) = match file.split_once('.') {
        None => (file.clone(), None),
        Some((id, ext)) => match Format::from_extension(ext) {
            Some(f) => (id.to_string(), Some(f)),
            None => return not_found(),
        },
    };
    if !valid_id(&id) {
        return not_found();
    }
    let Some(all) = state.site.load().feeds.get("feed").cloned() else { return not_found() };
    let base = state.config.load().base_url.to_string();
    let made = work::make(&state, Lane::Pages, move |v, budget| v.story(&all, &id, format, budget)).await;
    match made {
        Ok(StoryAnswer::Found(doc)) => {
            super::respond::code_off_worker(&headers, &doc).await;
            let mut res = respond(&headers, &doc, cache_control(state.max_age()));
            if format.is_none() {
                html_headers(res.headers_mut());
            }
            res
        }
        Ok(StoryAnswer::Moved(to)) => {
            let ext = format.map(|f| format!(".{}", f.extension())).unwrap_or_default();
            let location = format!("{base}stories/{to}{ext}");
            let mut res = Response::new(Body::from(format!("moved to {location}\n")));
            *res.status_mut() = StatusCode::MOVED_PERMANENTLY;
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&location) {
                h.insert(header::LOCATION, v);
            }
            h.insert(header::CACHE_CONTROL, cache_control(state.max_age()));
            res
        }
        Ok(StoryAnswer::Missing) => not_found(),
        Err(res) => res,
    }
}
