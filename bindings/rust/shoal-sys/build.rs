//! Generates the declarations from shoal.h with the `bindgen` command (Debian
//! package `bindgen`), so nothing generated is committed and no crate is
//! downloaded.
//!
//! Environment:
//!   SHOAL_INCLUDE_DIR  directory of shoal.h   (default <repo>/capi/include)
//!   SHOAL_LIB_DIR      directory of libshoal.so (default <repo>/build)
//!   BINDGEN            the bindgen command    (default `bindgen` on PATH)
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let repo = manifest.join("../../..");
    let include_dir =
        env::var_os("SHOAL_INCLUDE_DIR").map(PathBuf::from).unwrap_or_else(|| repo.join("capi/include"));
    let lib_dir = env::var_os("SHOAL_LIB_DIR").map(PathBuf::from).unwrap_or_else(|| repo.join("build"));
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);
    let bindgen = env::var_os("BINDGEN").unwrap_or_else(|| "bindgen".into());
    let header = include_dir.join("shoal.h");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("shoal.rs");

    for var in ["SHOAL_INCLUDE_DIR", "SHOAL_LIB_DIR", "BINDGEN"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=build.rs");

    let result = Command::new(&bindgen)
        .arg(&header)
        .args(["--allowlist-function", "shoal_.*"])
        .args(["--allowlist-type", "shoal_.*"])
        .args(["--allowlist-var", "SHOAL_.*"])
        // SHOAL_OK rather than shoal_result_SHOAL_OK; size_t as usize.
        .arg("--no-prepend-enum-name")
        .arg("--size_t-is-usize")
        .arg("-o")
        .arg(&out)
        .arg("--")
        .arg(format!("-I{}", include_dir.display()))
        .status();
    match result {
        Ok(status) if status.success() => {}
        Ok(status) => panic!(
            "`{} {}` failed ({status}); is SHOAL_INCLUDE_DIR right?",
            bindgen.to_string_lossy(),
            header.display()
        ),
        Err(e) => panic!(
            "cannot run `{}` ({e}): install it (Debian/Ubuntu: apt install bindgen) \
             or point BINDGEN at it",
            bindgen.to_string_lossy()
        ),
    }

    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=shoal");
    // This package's own test binaries find the library without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    // For dependents' build scripts: DEP_SHOAL_INCLUDE and DEP_SHOAL_LIB_DIR.
    println!("cargo:include={}", include_dir.display());
    println!("cargo:lib_dir={}", lib_dir.display());
}
