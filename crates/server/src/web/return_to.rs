//! Where a sign-in returns to: the page a visitor asked for before being
//! sent to sign in, carried as `next` through the sign-in form. Only a
//! path on this site is ever followed, so a link that names another site
//! (`//evil.example`, `/\evil.example`, `https://evil.example`) cannot use
//! the sign-in page to send a trader there.

/// The longest `next` carried: a page's path and query are far shorter.
const MAX_LEN: usize = 2048;

/// `next` when it is a path on this site, or `None`.
pub fn safe(next: &str) -> Option<&str> {
    let rest = next.strip_prefix('/')?;
    let local = next.len() <= MAX_LEN
        // `//host` and `/\host` name another host to a browser.
        && !rest.starts_with(['/', '\\'])
        // Browsers read `\` as `/` and drop tabs and newlines in a URL, so
        // none of them may hide a second slash.
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control() || c.is_whitespace());
    local.then_some(next)
}

/// The sign-in page, returning to `next` (when it is safe) afterwards.
pub fn sign_in_url(next: Option<&str>) -> String {
    match next.and_then(safe) {
        Some(next) if next != "/" => format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).expect("a string pair encodes")
        ),
        _ => "/login".to_owned(),
    }
}

/// Where a successful sign-in goes: `next` when it is safe, else the
/// dashboard.
pub fn after_sign_in(next: Option<&str>) -> &str {
    next.and_then(safe).unwrap_or("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_site_are_followed() {
        for good in ["/", "/trade?symbol=ABC", "/history", "/quote?symbol=A%2FB"] {
            assert_eq!(safe(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "https://evil.example/",
            "http:/evil.example",
            "evil.example",
            "/\t/evil.example",
            "/a\nb",
            "/ /evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(safe(bad), None, "{bad:?}");
        }
        assert_eq!(safe(&format!("/{}", "a".repeat(MAX_LEN))), None);
    }

    #[test]
    fn the_sign_in_link_carries_a_safe_next_only() {
        assert_eq!(
            sign_in_url(Some("/trade?symbol=ABC")),
            "/login?next=%2Ftrade%3Fsymbol%3DABC"
        );
        assert_eq!(sign_in_url(Some("//evil.example")), "/login");
        assert_eq!(sign_in_url(Some("/")), "/login");
        assert_eq!(sign_in_url(None), "/login");
        assert_eq!(after_sign_in(Some("//evil.example")), "/");
        assert_eq!(after_sign_in(Some("/history")), "/history");
    }
}
