//! The web dashboard (`web-ui/`), embedded in the binary and served at `/` with an SPA
//! fallback: any GET that no API route claims and that is not a file gets `index.html`, and
//! the dashboard's router takes it from there.
//!
//! `web-ui/dist` is built by npm (`cargo xtask run` / `cargo xtask test` run `npm run
//! build` first), never by a build script. A fresh clone without a build still compiles
//! (`allow_missing`) and answers `/` with a page saying how to build the dashboard. Debug
//! builds read the folder at run time (rust-embed's default), release builds embed it.

use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
// Relative to this crate's Cargo.toml. build.rs reruns when the folder appears or changes, so
// the folder is resolved (and, in release builds, embedded) as it is now.
#[folder = "../../web-ui/dist"]
#[allow_missing = true]
struct Assets;

/// Prefixes that belong to the server, never to the dashboard: an unknown path under them
/// is a JSON 404, not `index.html` (a mistyped API call must not answer 200 with HTML).
const SERVER_PREFIXES: &[&str] = &[
    "/api/", "/sdk/", "/ofrep/", "/docs", "/healthz", "/readyz", "/metrics",
];

/// Shown when the dashboard was not built before the server was compiled or started.
const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Flagpole</title></head><body style=\"font-family:sans-serif;max-width:40rem;margin:4rem auto\">\
<h1>Flagpole: dashboard not built</h1><p>This server has no dashboard assets \
(<code>web-ui/dist</code> was missing). Run <code>cargo xtask run</code>, which builds the \
dashboard and then the server, or <code>npm ci &amp;&amp; npm run build</code> in \
<code>web-ui/</code>.</p><p>The API is available: <a href=\"/docs\">/docs</a>.</p></body></html>";

/// The router's fallback: dashboard files, the SPA entry point, or a JSON 404.
pub(crate) async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let not_found = || {
        ApiError::NotFound {
            resource: "route",
            key: path.to_owned(),
        }
        .into_response()
    };
    if !(method == Method::GET || method == Method::HEAD)
        || SERVER_PREFIXES.iter().any(|p| path.starts_with(p))
    {
        return not_found();
    }
    let file = path.trim_start_matches('/');
    if !file.is_empty()
        && let Some(asset) = Assets::get(file)
    {
        return asset_response(file, asset);
    }
    // A missing file under /assets/ is a stale hashed name: a 404 is more useful to the
    // browser than HTML served as JavaScript.
    if file.starts_with("assets/") {
        return not_found();
    }
    match Assets::get("index.html") {
        Some(index) => asset_response("index.html", index),
        None => (
            StatusCode::OK,
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
            Html(NOT_BUILT),
        )
            .into_response(),
    }
}

fn asset_response(name: &str, asset: rust_embed::EmbeddedFile) -> Response {
    let mime = asset.metadata.mimetype();
    // Vite puts content-hashed files under assets/: their name changes with their content,
    // so they can be cached forever. Everything else (index.html above all, which names
    // the current hashes) is revalidated on every load.
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = asset.data.into_owned().into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn api_paths_are_json_404s() {
        for path in [
            "/api/v1/nope",
            "/sdk/v1/x",
            "/ofrep/v1/nope",
            "/docs/missing",
        ] {
            let response = fallback(Method::GET, path.parse().unwrap()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            let ct = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(ct.starts_with("application/json"), "{path}: {ct}");
        }
    }

    #[tokio::test]
    async fn unknown_pages_get_the_entry_point_uncached() {
        let response = fallback(Method::GET, "/projects/demo/flags".parse().unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let ct = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(ct.starts_with("text/html"), "{ct}");
    }

    #[tokio::test]
    async fn writes_to_unknown_paths_are_404s() {
        let response = fallback(Method::POST, "/projects".parse().unwrap()).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
