//! Evaluate a flag, then track what the user did, for an experiment's results.
//!
//! ```text
//! FLAGPOLE_URL=http://localhost:8080 FLAGPOLE_SDK_KEY=fp_sdk_... \
//!     cargo run -p flagpole-sdk --example track -- new-checkout
//! ```
//!
//! The event (and the exposure, if the server marks the flag for an experiment) is sent
//! with the next batch; `close()` flushes it, waiting at most 2 s for the server.

use std::time::Duration;

use flagpole_sdk::{Client, Context};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLAGPOLE_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let key = std::env::var("FLAGPOLE_SDK_KEY")?;
    let flag = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "new-checkout".into());

    let client = Client::builder(url, key)
        .application("track-example", env!("CARGO_PKG_VERSION"))
        .build()?;
    if let Err(not_ready) = client.wait_until_ready(Duration::from_secs(5)).await {
        eprintln!("{not_ready}");
    }

    let ctx = Context::new("user-1").with("country", "no");
    let new_checkout = client.bool_value(&flag, &ctx, false);
    println!("{flag} = {new_checkout}");

    // What the experiment measures: one event per completed checkout, with its amount.
    let properties = json!({"checkout": if new_checkout { "new" } else { "old" }, "items": 3});
    client.track(
        "checkout_completed",
        &ctx,
        Some(42.5),
        properties.as_object().cloned().unwrap_or_default(),
    )?;
    // Refused at the call: the server only stores finite numbers.
    if let Err(error) = client.track(
        "checkout_completed",
        &ctx,
        Some(f64::NAN),
        Default::default(),
    ) {
        println!("refused: {error}");
    }

    client.close().await;
    Ok(())
}
