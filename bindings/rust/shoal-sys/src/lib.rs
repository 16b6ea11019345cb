//! Raw declarations of libshoal's C ABI, generated at build time from
//! `capi/include/shoal.h` by bindgen. Everything here is `unsafe`; use the
//! `shoal` crate for the safe API.
//!
//! Result codes and other enum constants keep their C names (`SHOAL_OK`,
//! `SHOAL_ERR_TIMEOUT`, `SHOAL_FULL_REJECT`, ...).
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case)]
#![allow(clippy::all)]
#![allow(rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/shoal.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_match_the_header() {
        assert_eq!(SHOAL_OK, 0);
        assert_eq!(SHOAL_TIMEOUT_POLL, 0);
        assert_eq!(SHOAL_TIMEOUT_FOREVER, -1);
        assert_eq!(SHOAL_ABI_VERSION, 1);
    }

    #[test]
    fn library_loads_and_names_results() {
        unsafe {
            assert_eq!(shoal_abi_version(), SHOAL_ABI_VERSION as u32);
            let name = std::ffi::CStr::from_ptr(shoal_strerror(SHOAL_ERR_TIMEOUT));
            assert!(!name.to_bytes().is_empty());
            let v = std::ffi::CStr::from_ptr(shoal_version());
            assert_eq!(
                v.to_str().unwrap(),
                format!("{}.{}.{}", SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR, SHOAL_VERSION_PATCH)
            );
            // the crate's version (Cargo.toml) is the header's: one version source
            assert_eq!(
                env!("CARGO_PKG_VERSION"),
                format!("{}.{}.{}", SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR, SHOAL_VERSION_PATCH),
                "bindings/rust/Cargo.toml's version differs from capi/include/shoal.h"
            );
        }
    }
}
