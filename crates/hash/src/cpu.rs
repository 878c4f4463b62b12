//! CPU feature detection, one token type per instruction set a kernel of
//! this crate needs.
//!
//! A token is a zero-sized proof that the running CPU has the features: it
//! can only be made by its `detect` function, which checks them with
//! `is_x86_feature_detected!` (cached by the standard library after the
//! first call). Every SIMD kernel is a safe function that takes its token
//! by value and calls its `#[target_feature]` body inside; the `unsafe`
//! block there is justified by the token alone. A caller without a token
//! cannot reach the kernel, and uses the portable code instead.

macro_rules! token {
    ($(#[$doc:meta])* $name:ident: $first:tt $(, $feature:tt)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name(());

        impl $name {
            /// The token, when this CPU has every feature it stands for.
            #[inline]
            pub fn detect() -> Option<Self> {
                (std::arch::is_x86_feature_detected!($first)
                    $(&& std::arch::is_x86_feature_detected!($feature))*)
                    .then_some(Self(()))
            }
        }
    };
}

token!(
    /// AVX2 (multi-buffer MD5, 8 lanes).
    Avx2: "avx2"
);
token!(
    /// AVX-512F (multi-buffer MD5, 16 lanes).
    Avx512F: "avx512f"
);
token!(
    /// AVX-512F and AVX-512VL (one MD5 stream in 128-bit registers with
    /// ternary logic and rotations).
    Avx512Vl: "avx512f", "avx512vl"
);
token!(
    /// AVX-512F and AVX-512BW (multi-buffer SHA-1 and SHA-256, 16 lanes).
    Avx512Bw: "avx512f", "avx512bw"
);
token!(
    /// The SHA extensions with SSE2, SSSE3 and SSE4.1 (SHA-1 and SHA-256
    /// interleaved).
    ShaNi: "sha", "sse2", "ssse3", "sse4.1"
);
