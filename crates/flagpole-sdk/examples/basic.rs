//! Connect, wait for the flags, evaluate, and print every change until Ctrl-C.
//!
//! ```text
//! FLAGPOLE_URL=http://localhost:8080 FLAGPOLE_SDK_KEY=fp_sdk_... \
//!     cargo run -p flagpole-sdk --example basic -- new-checkout
//! ```

use std::time::Duration;

use flagpole_sdk::{Client, Context};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLAGPOLE_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let key = std::env::var("FLAGPOLE_SDK_KEY")?;
    let flag = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "new-checkout".into());

    let client = Client::builder(url, key)
        .cache_file(std::env::temp_dir().join("flagpole-example-cache.json"))
        .build()?;
    if let Err(not_ready) = client.wait_until_ready(Duration::from_secs(5)).await {
        // Not fatal: the client keeps connecting in the background and serves defaults
        // (or its cached flags) meanwhile. A rejected key reads "SDK key rejected: invalid
        // or revoked"; anything else names the connection state.
        eprintln!("{not_ready}");
    }

    let ctx = Context::new("user-1").with("country", "no");
    let detail = client.bool_detail(&flag, &ctx, false);
    println!(
        "{flag} = {} (variant {:?}, reason {})",
        detail.value,
        detail.variant,
        detail.reason.code()
    );

    let mut changes = client.subscribe_flag(flag.clone());
    loop {
        tokio::select! {
            event = changes.recv() => {
                let Some(event) = event else { break };
                let value = client.bool_value(&flag, &ctx, false);
                println!("version {}: {flag} = {value}", event.version);
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    client.close().await;
    Ok(())
}
