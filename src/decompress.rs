//! Decompression, chosen by magic bytes, never by file name.
//!
//! The raw (compressed) bytes pass through a [`Tap`] that counts them and feeds the
//! SHA-256 of the manifest as they stream, so no input is read twice.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, Read};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Raw read size: large enough that per-read overheads vanish.
pub const RAW_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    Plain,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::Plain
        }
    }
}

/// Counts and hashes every raw byte read through it.
pub struct Tap<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
    bytes: &'a mut u64,
}

impl<'a, R: Read> Tap<'a, R> {
    pub fn new(inner: R, hasher: &'a mut Sha256, bytes: &'a mut u64) -> Self {
        Tap {
            inner,
            hasher,
            bytes,
        }
    }
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        *self.bytes += n as u64;
        Ok(n)
    }
}

/// Opens the decompressed stream of `raw`, detecting the compression from its first bytes.
pub fn open<'a, R: Read + 'a>(mut raw: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    // A pipe may deliver the magic bytes over several reads.
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < head.len() {
        match raw.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = Compression::detect(&head[..got]);
    let buffered =
        BufReader::with_capacity(RAW_BUFFER, io::Cursor::new(head[..got].to_vec()).chain(raw));
    let reader: Box<dyn Read + 'a> = match compression {
        // Multi-member: concatenated gzip files are read whole.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::Plain => Box::new(buffered),
    };
    Ok((compression, reader))
}

/// SHA-256 of a whole file, read in one pass (used only to tell identical inputs apart).
pub fn sha256_of(path: &std::path::Path) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut bytes = 0;
    let mut tap = Tap::new(std::fs::File::open(path)?, &mut hasher, &mut bytes);
    io::copy(&mut tap, &mut io::sink())?;
    Ok(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> (Compression, io::Result<Vec<u8>>) {
        let (c, mut r) = open(bytes).unwrap();
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| out);
        (c, res)
    }

    #[test]
    fn detects_by_magic() {
        assert_eq!(read_all(&gzip(b"a\n")).0, Compression::Gzip);
        assert_eq!(
            read_all(&zstd::encode_all(&b"a\n"[..], 3).unwrap()).0,
            Compression::Zstd
        );
        assert_eq!(read_all(b"a\n").0, Compression::Plain);
        assert_eq!(read_all(b"").0, Compression::Plain);
        assert_eq!(read_all(b"\x1f").1.unwrap(), b"\x1f");
    }

    #[test]
    fn multi_member_gzip_is_read_whole() {
        let mut both = gzip(b"one\n");
        both.extend(gzip(b"two\n"));
        assert_eq!(read_all(&both).1.unwrap(), b"one\ntwo\n");
        let mut frames = zstd::encode_all(&b"one\n"[..], 3).unwrap();
        frames.extend(zstd::encode_all(&b"two\n"[..], 3).unwrap());
        assert_eq!(read_all(&frames).1.unwrap(), b"one\ntwo\n");
    }

    #[test]
    fn truncated_gzip_is_an_error() {
        let data: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let gz = gzip(&data);
        assert!(read_all(&gz[..gz.len() / 2]).1.is_err());
        assert!(read_all(&gz[..gz.len() - 4]).1.is_err());
    }
}
