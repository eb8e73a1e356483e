//! Rebuilds the server when the dashboard's build output changes, so a release binary
//! embeds the current `web-ui/dist`. The dashboard itself is built by npm (through
//! `cargo xtask run` / `cargo xtask test`), never from here.

fn main() {
    let dist = std::path::Path::new("../../web-ui/dist");
    if dist.exists() {
        println!("cargo:rerun-if-changed=../../web-ui/dist");
    } else {
        // No build yet: watch the folder it will appear in. Without this, a first
        // `npm run build` after a fresh clone would not be picked up by release builds.
        println!("cargo:rerun-if-changed=../../web-ui");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
