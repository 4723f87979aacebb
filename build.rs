//! Build script: links the Node.js addon (napi's linker setup) when the
//! `napi` feature is on; nothing otherwise.

fn main() {
    // Rerun only when this script changes: without the line, cargo reruns it
    // (and rebuilds the crate) whenever any file of the package changes, the
    // JS tests and scripts included.
    println!("cargo:rerun-if-changed=build.rs");
    // Only the Node addon needs napi's linker setup.
    if std::env::var_os("CARGO_FEATURE_NAPI").is_some() {
        napi_build::setup();
    }
}
