//! The baseline for `cargo xtask load-ofrep`: the most trivial axum server (any method, any
//! path, a fixed text body), on the same runtime settings and allocator as flagpole, so the
//! load test compares OFREP against what the HTTP stack alone can do on this machine.
//!
//! Usage: `baseline 127.0.0.1:PORT`.

use axum::Router;

/// The allocator `flagpole` uses, so the comparison is of the request handling alone.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8090".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().fallback(|| async { "Hello, World!" });
    axum::serve(listener, app).await
}
