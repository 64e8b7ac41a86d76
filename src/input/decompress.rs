//! Decompression, chosen by magic bytes, never by file name.
//!
//! The raw (compressed) bytes pass through a [`Tap`] that counts them and feeds the
//! SHA-256 of the manifest as they stream, so no input is read twice.

use crate::input::progress::ReadCounters;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, Read};
use std::sync::Arc;

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

/// Counts and hashes every raw byte read through it (and tells the progress
/// counters, when there are any).
pub struct Tap<'a, R> {
    inner: R,
    hasher: &'a mut Sha256,
    bytes: &'a mut u64,
    progress: Option<Arc<ReadCounters>>,
}

impl<'a, R: Read> Tap<'a, R> {
    pub fn new(
        inner: R,
        hasher: &'a mut Sha256,
        bytes: &'a mut u64,
        progress: Option<Arc<ReadCounters>>,
    ) -> Self {
        Tap {
            inner,
            hasher,
            bytes,
            progress,
        }
    }
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        *self.bytes += n as u64;
        if let Some(p) = &self.progress {
            p.bytes_read(n as u64);
        }
        Ok(n)
    }
}

/// Opens the decompressed stream of `raw`, detecting the compression from its first bytes.
pub fn open<'a, R: Read + Send + 'a>(
    mut raw: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
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
    let reader: Box<dyn Read + Send + 'a> = match compression {
        // Multi-member: concatenated gzip files are read whole.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::Plain => Box::new(buffered),
    };
    Ok((compression, reader))
}

/// Size of the blocks handed from the decompressing thread to the parsing one.
const BLOCK: usize = 1024 * 1024;
/// Blocks in flight: bounds memory per file to about `(DEPTH + 2) × BLOCK`.
const DEPTH: usize = 4;

/// Runs `text` (a decompressing reader) on a thread of its own and lets `consume`
/// read its output, so that inflating and parsing one file use two cores. The queue
/// between them is bounded, so memory stays flat whatever the file size.
pub fn pipelined<T>(
    text: Box<dyn Read + Send + '_>,
    consume: impl FnOnce(&mut dyn Read) -> T,
) -> T {
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<io::Result<(Vec<u8>, usize)>>(DEPTH);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new().name("inflate".into());
        let spawned = producer.spawn_scoped(scope, move || {
            let mut text = text;
            loop {
                let mut block = free_rx.try_recv().unwrap_or_else(|_| vec![0u8; BLOCK]);
                let mut len = 0;
                let result = loop {
                    match text.read(&mut block[len..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            len += n;
                            if len == block.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                if len > 0 && full_tx.send(Ok((block, len))).is_err() {
                    return; // the reader is gone
                }
                match result {
                    Ok(()) if len == BLOCK => continue,
                    Ok(()) => return,
                    Err(e) => {
                        let _ = full_tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            // No thread to spare: the consumer sees the error as a failed read.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let _ = tx.send(Err(e));
            return consume(&mut BlockReader {
                rx,
                free: std::sync::mpsc::channel().0,
                current: Vec::new(),
                pos: 0,
                len: 0,
            });
        }
        let mut reader = BlockReader {
            rx: full_rx,
            free: free_tx,
            current: Vec::new(),
            pos: 0,
            len: 0,
        };
        consume(&mut reader)
        // Dropping `reader` here unblocks the producer if `consume` stopped early.
    })
}

struct BlockReader {
    rx: std::sync::mpsc::Receiver<io::Result<(Vec<u8>, usize)>>,
    free: std::sync::mpsc::Sender<Vec<u8>>,
    current: Vec<u8>,
    pos: usize,
    len: usize,
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            let done = std::mem::take(&mut self.current);
            if !done.is_empty() {
                let _ = self.free.send(done);
            }
            match self.rx.recv() {
                Ok(Ok((block, len))) => {
                    self.current = block;
                    self.pos = 0;
                    self.len = len;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// SHA-256 of a whole file, read in one pass (used only to tell identical inputs apart).
pub fn sha256_of(path: &std::path::Path) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut bytes = 0;
    let mut tap = Tap::new(std::fs::File::open(path)?, &mut hasher, &mut bytes, None);
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
    fn pipelined_reading_gives_the_same_bytes_and_errors() {
        let data: Vec<u8> = (0..400_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let gz = gzip(&data);
        let (_, text) = open(&gz[..]).unwrap();
        let out = pipelined(text, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v)
        });
        assert_eq!(out.unwrap(), data);
        let (_, text) = open(&gz[..gz.len() / 2]).unwrap();
        let got = pipelined(text, |r| {
            let mut v = Vec::new();
            let res = r.read_to_end(&mut v);
            (v.len(), res.is_err())
        });
        assert!(got.1, "a truncated stream must end in an error");
        assert!(got.0 > 0 && got.0 < data.len());
        // A consumer that stops early does not hang the producer.
        let (_, text) = open(&gz[..]).unwrap();
        let first = pipelined(text, |r| {
            let mut b = [0u8; 4];
            r.read_exact(&mut b).map(|_| b)
        });
        assert_eq!(&first.unwrap(), b"line");
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
