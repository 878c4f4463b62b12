//! LZNT1 decompression (NTFS compressed attributes) (to be written).

/// A compression unit that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("LZNT1: {0}")]
pub struct Lznt1Error(pub String);

/// Decompresses one LZNT1 compression unit `src` into `out` (appending),
/// producing at most `max` bytes.
///
/// # Errors
/// Malformed chunk headers or back-references.
pub fn decompress(_src: &[u8], _out: &mut Vec<u8>, _max: usize) -> Result<(), Lznt1Error> {
    Err(Lznt1Error("not supported yet".into()))
}
