//! Live pages. A trader's page holds an event stream
//! (`/api/v1/users/{user}/events`, opened by `static/app.js`); on an event,
//! and on every (re)connection, the script fetches the page it shows again
//! and puts the parts marked `data-live` in place. The pages themselves do
//! not change for it: without the script they are the same pages, brought
//! up to date by reloading.
//!
//! Such a background fetch says so with a header, and is then served as a
//! view that must not use anything up nor show anything stale: the
//! one-time message stays for the page it was meant for (another tab may
//! be on its way to it), and the fragments that show prices are rendered
//! anew rather than taken from the page cache (the event may be a new
//! price that a cached fragment does not show yet).

use axum::http::HeaderMap;

/// The header `app.js` sends on a live refresh.
pub const REFRESH_HEADER: &str = "x-daytrader-live";

/// Whether the request is the script's live refresh of a page.
pub fn is_refresh(headers: &HeaderMap) -> bool {
    headers.get(REFRESH_HEADER).is_some_and(|v| v == "1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn only_the_scripts_header_marks_a_refresh() {
        let mut headers = HeaderMap::new();
        assert!(!is_refresh(&headers));
        headers.insert(REFRESH_HEADER, HeaderValue::from_static("0"));
        assert!(!is_refresh(&headers));
        headers.insert(REFRESH_HEADER, HeaderValue::from_static("1"));
        assert!(is_refresh(&headers));
    }
}
