//! The stylesheet, the script and the icon, compiled into the binary (no
//! CDN, nothing to deploy beside it). Their URLs carry a hash of their
//! content, so browsers may keep them for a year and still never use a
//! stale one after an upgrade.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::web::error::PageError;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../../static/app.css"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../../static/app.js"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../../static/icon.svg"),
    },
];

/// A hash of every asset together: one version for the set.
fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut hasher = Sha256::new();
        for asset in ASSETS {
            hasher.update(asset.body.as_bytes());
        }
        hex::encode(hasher.finalize())[..12].to_owned()
    })
}

/// The URL of asset `name`, for templates.
pub fn url(name: &str) -> String {
    format!("/static/{}/{name}", version())
}

/// `GET /static/{version}/{name}`. An older version's URL is still served
/// (with today's content) so that pages rendered by an instance not yet
/// upgraded keep their style during a rolling upgrade.
pub async fn serve(Path((_version, name)): Path<(String, String)>) -> Result<Response, PageError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name)
        .ok_or_else(|| PageError::not_found("There is no such file."))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.body,
    )
        .into_response())
}
