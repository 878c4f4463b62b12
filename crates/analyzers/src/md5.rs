//! MD5, as fast as one core allows: OpenSSL's libcrypto when the system has
//! it (linked at build time, see build.rs), otherwise a portable Rust
//! implementation whose dependency chains are shortened the way the fastest
//! hand-written versions do (G and H terms computed off the critical path).
//! Both are checked against the RustCrypto `md-5` crate in the tests.

/// An MD5 computation.
pub struct Md5 {
    inner: Inner,
}

impl Md5 {
    /// A fresh computation.
    pub fn new() -> Self {
        Self {
            inner: Inner::new(),
        }
    }
    /// Adds data.
    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data)
    }
    /// The digest.
    pub fn finalize(self) -> [u8; 16] {
        self.inner.finalize()
    }
    /// Which implementation runs.
    pub fn implementation() -> &'static str {
        IMPLEMENTATION
    }
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

/// MD5 of a buffer.
pub fn md5(data: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(data);
    h.finalize()
}

#[cfg(trawl_openssl_md5)]
const IMPLEMENTATION: &str = "openssl-libcrypto";
#[cfg(not(trawl_openssl_md5))]
const IMPLEMENTATION: &str = "rust";

#[cfg(trawl_openssl_md5)]
use openssl_md5::Inner;
#[cfg(not(trawl_openssl_md5))]
use portable::Inner;

#[cfg(trawl_openssl_md5)]
#[allow(unsafe_code)]
mod openssl_md5 {
    //! FFI to libcrypto's MD5 (the `MD5_*` API of OpenSSL 3, still
    //! exported). The context is a plain struct owned by Rust.

    #[repr(C)]
    struct Md5Ctx {
        // MD5_CTX: A, B, C, D, Nl, Nh, data[16], num (all 32-bit).
        words: [u32; 23],
    }

    unsafe extern "C" {
        fn MD5_Init(c: *mut Md5Ctx) -> i32;
        fn MD5_Update(c: *mut Md5Ctx, data: *const u8, len: usize) -> i32;
        fn MD5_Final(md: *mut u8, c: *mut Md5Ctx) -> i32;
    }

    pub struct Inner {
        ctx: Box<Md5Ctx>,
    }

    impl Inner {
        pub fn new() -> Self {
            let mut ctx = Box::new(Md5Ctx { words: [0; 23] });
            // SAFETY: ctx points to a properly sized, owned MD5_CTX.
            unsafe { MD5_Init(&mut *ctx) };
            Self { ctx }
        }
        pub fn update(&mut self, data: &[u8]) {
            // SAFETY: the pointer and length describe a live slice; the
            // context is owned and initialised.
            unsafe { MD5_Update(&mut *self.ctx, data.as_ptr(), data.len()) };
        }
        pub fn finalize(mut self) -> [u8; 16] {
            let mut out = [0u8; 16];
            // SAFETY: out has room for the 16-byte digest.
            unsafe { MD5_Final(out.as_mut_ptr(), &mut *self.ctx) };
            out
        }
    }

    // SAFETY: the context is plain data, owned by one Inner at a time.
    unsafe impl Send for Inner {}
}

#[cfg_attr(trawl_openssl_md5, allow(dead_code))]
mod portable {
    const K: [u32; 64] = [
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613,
        0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193,
        0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d,
        0x02441453, 0xd8a1e681, 0xe7d3fbc8, 0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed,
        0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122,
        0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
        0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665, 0xf4292244,
        0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb,
        0xeb86d391,
    ];

    #[inline(always)]
    fn ff(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        let t = a.wrapping_add(k).wrapping_add(m);
        t.wrapping_add(d ^ (b & (c ^ d)))
            .rotate_left(s)
            .wrapping_add(b)
    }
    #[inline(always)]
    fn gg(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        // (b & d) | (c & !d) == (b & d) + (c & !d): the second term does not
        // wait for b.
        let t = a.wrapping_add(k).wrapping_add(m).wrapping_add(c & !d);
        t.wrapping_add(b & d).rotate_left(s).wrapping_add(b)
    }
    #[inline(always)]
    fn hh(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        let t = a.wrapping_add(k).wrapping_add(m);
        t.wrapping_add(b ^ (c ^ d)).rotate_left(s).wrapping_add(b)
    }
    #[inline(always)]
    fn ii(a: u32, b: u32, c: u32, d: u32, m: u32, k: u32, s: u32) -> u32 {
        let t = a.wrapping_add(k).wrapping_add(m);
        t.wrapping_add(c ^ (b | !d)).rotate_left(s).wrapping_add(b)
    }

    pub(super) fn compress(state: &mut [u32; 4], blocks: &[u8]) {
        let [mut a0, mut b0, mut c0, mut d0] = *state;
        for blk in blocks.chunks_exact(64) {
            let mut m = [0u32; 16];
            for (i, w) in blk.chunks_exact(4).enumerate() {
                m[i] = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            }
            let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
            macro_rules! r4 {
                ($f:ident, $i:expr, $m0:expr, $m1:expr, $m2:expr, $m3:expr, $s0:expr, $s1:expr, $s2:expr, $s3:expr) => {
                    a = $f(a, b, c, d, m[$m0], K[$i], $s0);
                    d = $f(d, a, b, c, m[$m1], K[$i + 1], $s1);
                    c = $f(c, d, a, b, m[$m2], K[$i + 2], $s2);
                    b = $f(b, c, d, a, m[$m3], K[$i + 3], $s3);
                };
            }
            r4!(ff, 0, 0, 1, 2, 3, 7, 12, 17, 22);
            r4!(ff, 4, 4, 5, 6, 7, 7, 12, 17, 22);
            r4!(ff, 8, 8, 9, 10, 11, 7, 12, 17, 22);
            r4!(ff, 12, 12, 13, 14, 15, 7, 12, 17, 22);
            r4!(gg, 16, 1, 6, 11, 0, 5, 9, 14, 20);
            r4!(gg, 20, 5, 10, 15, 4, 5, 9, 14, 20);
            r4!(gg, 24, 9, 14, 3, 8, 5, 9, 14, 20);
            r4!(gg, 28, 13, 2, 7, 12, 5, 9, 14, 20);
            r4!(hh, 32, 5, 8, 11, 14, 4, 11, 16, 23);
            r4!(hh, 36, 1, 4, 7, 10, 4, 11, 16, 23);
            r4!(hh, 40, 13, 0, 3, 6, 4, 11, 16, 23);
            r4!(hh, 44, 9, 12, 15, 2, 4, 11, 16, 23);
            r4!(ii, 48, 0, 7, 14, 5, 6, 10, 15, 21);
            r4!(ii, 52, 12, 3, 10, 1, 6, 10, 15, 21);
            r4!(ii, 56, 8, 15, 6, 13, 6, 10, 15, 21);
            r4!(ii, 60, 4, 11, 2, 9, 6, 10, 15, 21);
            a0 = a0.wrapping_add(a);
            b0 = b0.wrapping_add(b);
            c0 = c0.wrapping_add(c);
            d0 = d0.wrapping_add(d);
        }
        *state = [a0, b0, c0, d0];
    }

    pub struct Inner {
        state: [u32; 4],
        buf: [u8; 64],
        buf_len: usize,
        total: u64,
    }

    impl Inner {
        pub fn new() -> Self {
            Self {
                state: [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476],
                buf: [0; 64],
                buf_len: 0,
                total: 0,
            }
        }
        pub fn update(&mut self, mut data: &[u8]) {
            self.total = self.total.wrapping_add(data.len() as u64);
            if self.buf_len > 0 {
                let take = (64 - self.buf_len).min(data.len());
                self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
                self.buf_len += take;
                data = &data[take..];
                if self.buf_len < 64 {
                    return;
                }
                let b = self.buf;
                compress(&mut self.state, &b);
                self.buf_len = 0;
            }
            let full = data.len() / 64 * 64;
            compress(&mut self.state, &data[..full]);
            let rest = &data[full..];
            self.buf[..rest.len()].copy_from_slice(rest);
            self.buf_len = rest.len();
        }
        pub fn finalize(mut self) -> [u8; 16] {
            let bits = self.total.wrapping_mul(8);
            let mut pad = [0u8; 72];
            pad[0] = 0x80;
            let padlen = if self.buf_len < 56 {
                56 - self.buf_len
            } else {
                120 - self.buf_len
            };
            let mut tail = pad[..padlen].to_vec();
            tail.extend_from_slice(&bits.to_le_bytes());
            let total = self.total;
            self.update(&tail);
            self.total = total;
            let mut out = [0u8; 16];
            for (i, w) in self.state.iter().enumerate() {
                out[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest::Digest;

    #[test]
    fn equals_rustcrypto_md5() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 131 + i / 9) as u8).collect();
        for len in [
            0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 299_999,
        ] {
            let want: [u8; 16] = ::md5::Md5::digest(&data[..len]).into();
            assert_eq!(md5(&data[..len]), want, "len {len}");
            // Fed in uneven pieces.
            let mut h = Md5::new();
            for piece in data[..len].chunks(37) {
                h.update(piece);
            }
            assert_eq!(h.finalize(), want, "pieces, len {len}");
            let mut p = portable::Inner::new();
            for piece in data[..len].chunks(61) {
                p.update(piece);
            }
            assert_eq!(p.finalize(), want, "portable, len {len}");
        }
    }
}
