//! The address the visitor used to reach the site (`http://host:port`), as
//! the balancer passes it on: `X-Forwarded-Host` when a proxy in front of
//! it set one, else the `Host` header (which HAProxy and nginx pass
//! through), and `X-Forwarded-Proto` for the scheme. Pages show it in
//! examples and links to copy, so that they work as shown.

use axum::http::HeaderMap;
use axum::http::header::HOST;

use crate::web::session::is_https;

/// The longest host name kept (DNS names are at most 253 characters, and a
/// port follows).
const MAX_HOST: usize = 260;

/// The site's origin as the request names it, or `None` when it names no
/// plausible host (then the page says "this site" in words).
pub fn origin(headers: &HeaderMap) -> Option<String> {
    let header = |name| {
        let value = headers.get(name)?.to_str().ok()?;
        // A chain of proxies lists hosts first to last: the first is the
        // one the visitor typed.
        let first = value.split(',').next()?.trim();
        Some(first).filter(|host| !host.is_empty())
    };
    let host = header("x-forwarded-host").or_else(|| header(HOST.as_str()))?;
    let plausible = host.len() <= MAX_HOST
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    let scheme = if is_https(headers) { "https" } else { "http" };
    plausible.then(|| format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_origin_is_the_one_the_visitor_used() {
        assert_eq!(
            origin(&headers(&[("host", "127.0.0.1:9999")])).as_deref(),
            Some("http://127.0.0.1:9999")
        );
        let proxied = headers(&[
            ("host", "web2:9999"),
            ("x-forwarded-host", "trade.example.com, inner.lan"),
            ("x-forwarded-proto", "https"),
        ]);
        assert_eq!(
            origin(&proxied).as_deref(),
            Some("https://trade.example.com")
        );
        assert_eq!(
            origin(&headers(&[("host", "[::1]:80")])).as_deref(),
            Some("http://[::1]:80")
        );
        assert_eq!(origin(&HeaderMap::new()), None);
        assert_eq!(origin(&headers(&[("host", "a\"b<c")])), None);
    }
}
