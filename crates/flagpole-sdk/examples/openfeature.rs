//! Flagpole behind the OpenFeature API (feature `openfeature`).
//!
//! ```text
//! FLAGPOLE_URL=http://localhost:8080 FLAGPOLE_SDK_KEY=fp_sdk_... \
//!     cargo run -p flagpole-sdk --features openfeature --example openfeature
//! ```

use flagpole_sdk::Client;
use flagpole_sdk::openfeature::FlagpoleProvider;
use open_feature::{EvaluationContext, OpenFeature};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLAGPOLE_URL").unwrap_or_else(|_| "http://localhost:8080".into());
    let key = std::env::var("FLAGPOLE_SDK_KEY")?;
    let client = Client::builder(url, key).build()?;

    // set_provider calls the provider's initialize, which waits for the first flags.
    let mut api = OpenFeature::singleton_mut().await;
    api.set_provider(FlagpoleProvider::new(client.clone()))
        .await;
    let of_client = api.create_client();
    drop(api);
    // OpenFeature's initialize cannot fail, so say here why there are no flags (for a
    // revoked key: "SDK key rejected: invalid or revoked").
    let status = client.status();
    if !status.is_ready() {
        eprintln!("flagpole client not ready: {status}");
    }

    let ctx = EvaluationContext::default()
        .with_targeting_key("user-1")
        .with_custom_field("country", "no");
    let details = of_client
        .get_bool_details("new-checkout", Some(&ctx), None)
        .await;
    match details {
        Ok(d) => println!(
            "new-checkout = {} ({:?}, {:?})",
            d.value, d.variant, d.reason
        ),
        Err(e) => println!("new-checkout failed: {e:?}"),
    }
    client.close().await;
    Ok(())
}
