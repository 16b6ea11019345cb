//! Lets this crate's own tests and examples find libshoal.so without
//! LD_LIBRARY_PATH (an rpath to the directory shoal-sys linked against). Not
//! propagated to crates that depend on `shoal`.
fn main() {
    if let Ok(dir) = std::env::var("DEP_SHOAL_LIB_DIR") {
        // Tests (unit and integration), examples, benches of this package only.
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
