//! LZNT1 decompression (NTFS compressed attributes), as MS-XCA section 2.5
//! describes it.
//!
//! A compression unit is a sequence of chunks, each of which stands for (at
//! most) 4096 bytes of output. A chunk starts with a 16-bit little-endian
//! header: bits 0-11 hold the chunk's stored size minus 3 (header
//! included), bits 12-14 the signature 3, bit 15 whether the chunk is
//! compressed. A header of 0 ends the unit. An uncompressed chunk is its
//! bytes; a compressed one is groups of a flag byte followed by eight
//! tokens, where a clear bit is a literal byte and a set bit a 16-bit
//! back-reference whose split between offset and length depends on how far
//! into the chunk the output is (12 length bits at the start, one fewer each
//! time the position passes the next power of two from 16 on).
//!
//! A chunk that decodes to fewer than 4096 bytes and is followed by another
//! chunk is padded with zeros to 4096 (each chunk covers one 4 KiB piece of
//! the unit), as Windows and ntfs-3g read it.

/// Uncompressed bytes per chunk.
const CHUNK: usize = 4096;

/// A compression unit that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("LZNT1: {0}")]
pub struct Lznt1Error(pub String);

/// Decompresses one LZNT1 compression unit `src` into `out` (appending),
/// producing at most `max` bytes.
///
/// # Errors
/// Malformed chunk headers or back-references.
pub fn decompress(src: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), Lznt1Error> {
    let start = out.len();
    let limit = start.saturating_add(max);
    let mut pos = 0usize;
    let mut chunk_no = 0usize;
    while pos + 2 <= src.len() && out.len() < limit {
        let h = u16::from_le_bytes([src[pos], src[pos + 1]]);
        if h == 0 {
            break;
        }
        let stored = usize::from(h & 0x0fff) + 1;
        let body_start = pos + 2;
        let body_end = body_start + stored;
        if body_end > src.len() {
            return Err(Lznt1Error(format!(
                "chunk {chunk_no} at byte {pos} claims {stored} bytes, {} remain",
                src.len() - body_start
            )));
        }
        // Each chunk begins at a 4 KiB boundary of the unit's output.
        let chunk_out = start + chunk_no * CHUNK;
        if chunk_out >= limit {
            break;
        }
        if out.len() < chunk_out {
            out.resize(chunk_out, 0);
        }
        let chunk_limit = (chunk_out + CHUNK).min(limit);
        let body = &src[body_start..body_end];
        if h & 0x8000 == 0 {
            let n = body.len().min(chunk_limit - out.len());
            out.extend_from_slice(&body[..n]);
        } else {
            decode_chunk(body, out, chunk_out, chunk_limit)
                .map_err(|e| Lznt1Error(format!("chunk {chunk_no} at byte {pos}: {e}")))?;
        }
        pos = body_end;
        chunk_no += 1;
    }
    Ok(())
}

/// Decodes one compressed chunk body; the chunk's output starts at
/// `chunk_out` in `out` and may not pass `chunk_limit`.
fn decode_chunk(
    body: &[u8],
    out: &mut Vec<u8>,
    chunk_out: usize,
    chunk_limit: usize,
) -> Result<(), String> {
    let mut i = 0usize;
    while i < body.len() {
        let flags = body[i];
        i += 1;
        for bit in 0..8 {
            if i >= body.len() || out.len() >= chunk_limit {
                return Ok(());
            }
            if flags & (1 << bit) == 0 {
                out.push(body[i]);
                i += 1;
                continue;
            }
            let Some(t) = body.get(i..i + 2) else {
                return Err(format!("back-reference cut at byte {i}"));
            };
            let token = usize::from(u16::from_le_bytes([t[0], t[1]]));
            i += 2;
            let here = out.len() - chunk_out;
            if here == 0 {
                return Err("back-reference before any byte of the chunk".into());
            }
            // Length bits: 12 while the position is within 16 bytes, one
            // fewer for each further doubling.
            let mut len_bits = 12u32;
            let mut p = here - 1;
            while p >= 0x10 {
                p >>= 1;
                len_bits -= 1;
            }
            let len_mask = (1usize << len_bits) - 1;
            let length = (token & len_mask) + 3;
            let offset = (token >> len_bits) + 1;
            if offset > here {
                return Err(format!(
                    "back-reference {offset} bytes back at chunk position {here}"
                ));
            }
            let from = out.len() - offset;
            let n = length.min(chunk_limit - out.len());
            for k in 0..n {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    Ok(())
}

/// Compresses `data` (at most one unit) into LZNT1 chunks with a simple
/// greedy matcher. Test helper: lets the tests round-trip arbitrary data.
#[doc(hidden)]
pub fn compress_for_tests(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in data.chunks(CHUNK) {
        let mut body = Vec::new();
        let mut pos = 0usize;
        while pos < chunk.len() {
            let flag_at = body.len();
            body.push(0u8);
            for bit in 0..8 {
                if pos >= chunk.len() {
                    break;
                }
                let mut len_bits = 12u32;
                if pos > 0 {
                    let mut p = pos - 1;
                    while p >= 0x10 {
                        p >>= 1;
                        len_bits -= 1;
                    }
                }
                let max_len = (1usize << len_bits) - 1 + 3;
                let max_off = 1usize << (16 - len_bits);
                let (mut best_len, mut best_off) = (0, 0);
                for off in 1..=pos.min(max_off) {
                    let mut l = 0;
                    while l < max_len
                        && pos + l < chunk.len()
                        && chunk[pos + l - off] == chunk[pos + l]
                    {
                        l += 1;
                    }
                    if l > best_len {
                        best_len = l;
                        best_off = off;
                    }
                }
                if best_len >= 3 {
                    let token = ((best_off - 1) << len_bits) | (best_len - 3);
                    body.extend_from_slice(&(token as u16).to_le_bytes());
                    body[flag_at] |= 1 << bit;
                    pos += best_len;
                } else {
                    body.push(chunk[pos]);
                    pos += 1;
                }
            }
        }
        let h = 0xb000u16 | ((body.len() - 1) as u16 & 0x0fff);
        out.extend_from_slice(&h.to_le_bytes());
        out.extend_from_slice(&body);
    }
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Published LZNT1 vectors (CyberChef's LZNT1 test, the lznt1
        // crate's documentation example).
        let src = b"\x1a\xb0\x00compress\x00edtestda\x04ta\x07\x88alot";
        let mut out = Vec::new();
        decompress(src, &mut out, 4096).unwrap();
        assert_eq!(out, b"compressedtestdatacompressedalot");
        let src = b"\x0c\xb0\x00Hello wo\x00rld";
        let mut out = Vec::new();
        decompress(src, &mut out, 4096).unwrap();
        assert_eq!(out, b"Hello world");
    }

    #[test]
    fn round_trip_text_and_random() {
        let mut data = Vec::new();
        for i in 0..3000u32 {
            data.extend_from_slice(format!("line {} of the test {}\n", i % 97, i % 13).as_bytes());
        }
        data.truncate(65536);
        let mut x = 0x1234_5678u32;
        for b in data.iter_mut().skip(20000).take(3000) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let c = compress_for_tests(&data);
        assert!(c.len() < data.len());
        let mut out = Vec::new();
        decompress(&c, &mut out, 65536).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn uncompressed_chunk_and_max() {
        let mut src = vec![0xffu8, 0x3f];
        src.extend((0..4096).map(|i| i as u8));
        src.extend_from_slice(&[0, 0]);
        let mut out = vec![9u8];
        decompress(&src, &mut out, 100).unwrap();
        assert_eq!(out.len(), 101);
        assert_eq!(out[0], 9);
        assert_eq!(out[1..], (0..100).map(|i| i as u8).collect::<Vec<_>>()[..]);
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        // Back-reference at position 0.
        let src = [0x02, 0xb0, 0x01, 0x00, 0x00];
        assert!(decompress(&src, &mut Vec::new(), 4096).is_err());
        // Chunk longer than the input.
        let src = [0xff, 0xbf, 0x00];
        assert!(decompress(&src, &mut Vec::new(), 4096).is_err());
        // Offset past the start.
        let src = [0x03, 0xb0, 0x02, 0x41, 0xff, 0xff];
        assert!(decompress(&src, &mut Vec::new(), 4096).is_err());
        // Random garbage never panics.
        let mut x = 7u32;
        for _ in 0..2000 {
            let n = (x % 300) as usize;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                v.push(x as u8);
            }
            let mut out = Vec::new();
            let _ = decompress(&v, &mut out, 16384);
            assert!(out.len() <= 16384);
        }
    }
}
