//! Links OpenSSL's libcrypto for MD5 when the system has it (Debian's
//! libssl3, present on every machine with the `openssl` command): its MD5
//! assembly is the fastest serial MD5 there is, and MD5 is the one hash of a
//! disk image that cannot be split. Without it, a portable Rust MD5 is used.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(trawl_openssl_md5)");
    println!("cargo::rerun-if-env-changed=TRAWL_NO_OPENSSL");
    if std::env::var_os("TRAWL_NO_OPENSSL").is_some() {
        return;
    }
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/lib/x86_64-linux-gnu",
    ];
    for d in dirs {
        let lib = std::path::Path::new(d).join("libcrypto.so.3");
        if lib.exists() {
            println!("cargo::rerun-if-changed={}", lib.display());
            println!("cargo::rustc-link-search=native={d}");
            println!("cargo::rustc-link-lib=dylib:+verbatim=libcrypto.so.3");
            println!("cargo::rustc-cfg=trawl_openssl_md5");
            return;
        }
    }
}
