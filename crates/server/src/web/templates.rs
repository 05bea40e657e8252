//! What every page renders with: the HTML response and rendered fragments.
//! Each page's own template lives beside its handlers (the error page's in
//! `chrome`).

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::web::error::PageError;

/// A rendered page with its status.
pub fn html(status: StatusCode, page: &impl Template) -> Result<Response, PageError> {
    let body = page.render()?;
    Ok((
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

/// HTML rendered by one of this module's templates (escaped as it was
/// rendered), to be placed in a page as it is. Made only by [`Fragment::render`]
/// or read back from the page cache, where only such renderings are stored;
/// never from anything a user typed.
#[derive(Clone, Debug)]
pub struct Fragment(String);

impl Fragment {
    pub fn render(template: &impl Template) -> Result<Fragment, PageError> {
        Ok(Fragment(template.render()?))
    }

    /// Bytes the page cache stored from [`Fragment::as_str`].
    pub(super) fn from_cached(text: String) -> Fragment {
        Fragment(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Fragment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
