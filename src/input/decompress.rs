//! Decompression, chosen by magic bytes, never by file name: gzip, zstd, bzip2, xz and
//! lz4 frames (each multi-member/multi-stream where the format allows), else plain text.
//! An archive of several files (zip, 7z, rar, tar, also inside a compression) is named
//! and refused: "zip archive: unpack it first".
//!
//! The raw (compressed) bytes pass through a [`Tap`] that counts them and feeds the
//! SHA-256 of the manifest as they stream, so no input is read twice.

use crate::input::framing::{Block, BlockKind, Framer};
use crate::input::gzip_index::{GzIndex, IndexingGz, IndexingPlain};
use crate::input::progress::ReadCounters;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, BufReader, Read};
use std::sync::Arc;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0];
const LZ4_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
/// Where tar's `ustar` magic sits, and how much of a stream is looked at for magic bytes.
const TAR_MAGIC_AT: usize = 257;
const HEAD: usize = 512;
/// Raw read size: large enough that per-read overheads vanish.
pub const RAW_BUFFER: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
    Lz4,
    Plain,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.len() >= 4 && head.starts_with(b"BZh") && (b'1'..=b'9').contains(&head[3]) {
            Compression::Bzip2
        } else if head.starts_with(&XZ_MAGIC) {
            Compression::Xz
        } else if head.starts_with(&LZ4_MAGIC) || head.starts_with(&LZ4_LEGACY_MAGIC) {
            Compression::Lz4
        } else {
            Compression::Plain
        }
    }
}

/// The kind of archive (several files in one) that `head` starts, if any.
pub fn archive_kind(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        Some("zip")
    } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        Some("7z")
    } else if head.starts_with(b"Rar!\x1a\x07") {
        Some("rar")
    } else if head.get(TAR_MAGIC_AT..TAR_MAGIC_AT + 5) == Some(b"ustar") {
        Some("tar")
    } else {
        None
    }
}

fn archive_error(kind: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{kind} archive: unpack it first"),
    )
}

/// Reads up to [`HEAD`] bytes; a read error after some bytes is kept to be replayed.
fn read_head<R: Read>(r: &mut R) -> (Vec<u8>, Option<io::Error>) {
    let mut head = vec![0u8; HEAD];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                head.truncate(got);
                return (head, Some(e));
            }
        }
    }
    head.truncate(got);
    (head, None)
}

/// The bytes already read from a stream, then the error that stopped that read (if
/// any), then the rest of the stream.
struct Replay<R> {
    head: io::Cursor<Vec<u8>>,
    error: Option<io::Error>,
    rest: R,
}

impl<R: Read> Read for Replay<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.head.read(buf)?;
        if n > 0 || buf.is_empty() {
            return Ok(n);
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.rest.read(buf)
    }
}

/// lz4 frames one after another: the decoder stops at the end of each frame, so a new
/// one is started while input remains.
struct Lz4Frames<R: io::BufRead> {
    decoder: lz4_flex::frame::FrameDecoder<R>,
}

impl<R: io::BufRead> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.decoder.read(buf)?;
            if n > 0 || buf.is_empty() || self.decoder.get_mut().fill_buf()?.is_empty() {
                return Ok(n);
            }
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

/// Opens the decompressed stream of `raw`, detecting the compression from its first
/// bytes. An archive of several files (raw, or inside a compression) is an error that
/// names it.
pub fn open<'a, R: Read + Send + 'a>(
    raw: R,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    open_indexed(raw, None)
}

/// [`open`], recording access points into `index` when the input is gzip or plain (see
/// [`crate::input::gzip_index`]): gzip is then inflated by zlib's own API, so that the
/// compressed bit offset of each deflate block is known. Other compressions record
/// none (the second read decompresses them from the start).
pub fn open_indexed<'a, R: Read + Send + 'a>(
    mut raw: R,
    index: Option<Arc<std::sync::Mutex<GzIndex>>>,
) -> io::Result<(Compression, Box<dyn Read + Send + 'a>)> {
    // A pipe may deliver the magic bytes over several reads.
    let (head, error) = read_head(&mut raw);
    if let Some(e) = error {
        return Err(e);
    }
    if let Some(kind) = archive_kind(&head) {
        return Err(archive_error(kind));
    }
    let compression = Compression::detect(&head);
    let buffered = BufReader::with_capacity(RAW_BUFFER, io::Cursor::new(head).chain(raw));
    let mut reader: Box<dyn Read + Send + 'a> = match compression {
        // Multi-member: concatenated gzip files are read whole.
        Compression::Gzip => match index {
            Some(index) => Box::new(IndexingGz::new(buffered, index)?),
            None => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        },
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
        Compression::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new(buffered, true)),
        Compression::Lz4 => Box::new(Lz4Frames {
            decoder: lz4_flex::frame::FrameDecoder::new(buffered),
        }),
        Compression::Plain => {
            return Ok(match index {
                Some(index) => (compression, Box::new(IndexingPlain::new(buffered, index))),
                None => (compression, Box::new(buffered)),
            })
        }
    };
    // A compressed tar (.tar.gz, say) is an archive too.
    let (head, error) = read_head(&mut reader);
    if let Some(kind) = archive_kind(&head) {
        return Err(archive_error(kind));
    }
    let replay = Replay {
        head: io::Cursor::new(head),
        error,
        rest: reader,
    };
    Ok((compression, Box::new(replay)))
}

/// Blocks in flight: bounds memory per file to about `(DEPTH + workers + 1)` blocks of
/// [`crate::input::framing::BLOCK`] bytes.
const DEPTH: usize = 4;

/// Where a stream is inflated and cut into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inflate {
    /// On a thread of its own beside the parse workers (two cores or more on a file).
    OwnThread,
    /// On the thread that asks for the next block: one thread does all the work.
    Inline,
}

impl Inflate {
    /// What `--threads` asks for: with one thread (the current rayon pool's size), that
    /// one thread inflates too; with more, each file read has an inflate thread beside
    /// its parse workers.
    pub fn for_pool() -> Inflate {
        if rayon::current_num_threads() <= 1 {
            Inflate::Inline
        } else {
            Inflate::OwnThread
        }
    }
}

/// Cuts `text` (a decompressing reader) into blocks of whole lines with a [`Framer`]
/// and lets `consume` take them (several workers may share one [`Blocks`]). With
/// [`Inflate::OwnThread`] the reader and framer run on a thread of their own, so that
/// inflating and parsing one file use two cores or more; the queue between them is
/// bounded, so memory stays flat whatever the file size. With [`Inflate::Inline`] each
/// block is read when asked for, on the asking thread.
pub fn read_blocks<'t, T>(
    text: Box<dyn Read + Send + 't>,
    max_line: usize,
    how: Inflate,
    consume: impl FnOnce(&Blocks<'t>) -> T,
) -> T {
    if how == Inflate::Inline {
        return consume(&Blocks {
            source: Source::Inline(std::sync::Mutex::new(InlineFramer {
                framer: Framer::new(text, max_line),
                free: Vec::new(),
            })),
        });
    }
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Block>(DEPTH);
    let (free_tx, free_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new().name("inflate".into());
        let spawned = producer.spawn_scoped(scope, move || {
            let mut framer = Framer::new(text, max_line);
            let mut spare = || free_rx.try_recv().unwrap_or_default();
            while let Some(block) = framer.next_block(&mut spare) {
                if full_tx.send(block).is_err() {
                    return; // the readers are gone
                }
            }
        });
        if let Err(error) = spawned {
            // No thread to spare: the consumer sees the error as a failed read.
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let _ = tx.send(Block {
                seq: 0,
                kind: BlockKind::Failed {
                    error,
                    dropped_partial_line: false,
                },
            });
            return consume(&Blocks {
                source: Source::Queue {
                    full: std::sync::Mutex::new(rx),
                    free: std::sync::mpsc::channel().0,
                },
            });
        }
        let blocks = Blocks {
            source: Source::Queue {
                full: std::sync::Mutex::new(full_rx),
                free: free_tx,
            },
        };
        consume(&blocks)
        // Dropping `blocks` here unblocks the producer if `consume` stopped early.
    })
}

/// The blocks of one stream, in order, for one reader or several.
pub struct Blocks<'t> {
    source: Source<'t>,
}

enum Source<'t> {
    /// Filled by the inflate thread; parsed buffers go back to it through `free`.
    Queue {
        full: std::sync::Mutex<std::sync::mpsc::Receiver<Block>>,
        free: std::sync::mpsc::Sender<Vec<u8>>,
    },
    /// Framed when asked for.
    Inline(std::sync::Mutex<InlineFramer<'t>>),
}

struct InlineFramer<'t> {
    framer: Framer<Box<dyn Read + Send + 't>>,
    /// Parsed blocks' buffers, for reuse.
    free: Vec<Vec<u8>>,
}

impl Blocks<'_> {
    /// The next block; `None` at the end of the stream.
    pub fn next(&self) -> Option<Block> {
        // A poisoned lock means another worker panicked: end here, the panic is
        // reported where the workers are joined.
        match &self.source {
            Source::Queue { full, .. } => full.lock().ok()?.recv().ok(),
            Source::Inline(inline) => {
                let mut inline = inline.lock().ok()?;
                let InlineFramer { framer, free } = &mut *inline;
                framer.next_block(&mut || free.pop().unwrap_or_default())
            }
        }
    }

    /// Hands a parsed block's buffer back for reuse.
    pub fn recycle(&self, block: Block) {
        if let Some(buf) = block.into_buffer() {
            match &self.source {
                Source::Queue { free, .. } => {
                    let _ = free.send(buf);
                }
                Source::Inline(inline) => {
                    if let Ok(mut inline) = inline.lock() {
                        inline.free.push(buf);
                    }
                }
            }
        }
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

    /// The text of every block, in order, and whether the stream failed.
    fn drain(blocks: &Blocks<'_>) -> (Vec<u8>, bool) {
        let (mut text, mut failed, mut seq) = (Vec::new(), false, 0);
        while let Some(block) = blocks.next() {
            assert_eq!(block.seq, seq);
            seq += 1;
            match &block.kind {
                BlockKind::Lines { buf, len } => text.extend_from_slice(&buf[..*len]),
                BlockKind::TooLong => text.extend_from_slice(b"<too long>\n"),
                BlockKind::Failed { .. } => failed = true,
            }
            blocks.recycle(block);
        }
        (text, failed)
    }

    /// Inflated on a thread of its own or inline, the blocks are the stream's bytes, a
    /// failed stream ends in a failed block, a consumer may stop early, and two
    /// workers on one stream see every block once.
    #[test]
    fn blocks_give_the_same_bytes_and_errors_on_either_thread() {
        let data: Vec<u8> = (0..400_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let gz = gzip(&data);
        for how in [Inflate::OwnThread, Inflate::Inline] {
            let (_, text) = open(&gz[..]).unwrap();
            assert_eq!(
                read_blocks(text, 1 << 20, how, drain),
                (data.clone(), false)
            );
            let (_, text) = open(&gz[..gz.len() / 2]).unwrap();
            let (got, failed) = read_blocks(text, 1 << 20, how, drain);
            assert!(failed, "{how:?}: a truncated stream must end in an error");
            assert!(!got.is_empty() && got.len() < data.len());
            assert!(data.starts_with(&got) && got.ends_with(b"\n"));
            // A consumer that stops early does not hang the producer.
            let (_, text) = open(&gz[..]).unwrap();
            let first = read_blocks(text, 1 << 20, how, |b| b.next().map(|b| b.seq));
            assert_eq!(first, Some(0));
            let (_, text) = open(&gz[..]).unwrap();
            let total = read_blocks(text, 1 << 20, how, |blocks| {
                let count = || {
                    let mut bytes = 0;
                    while let Some(b) = blocks.next() {
                        if let BlockKind::Lines { len, .. } = b.kind {
                            bytes += len;
                        }
                        blocks.recycle(b);
                    }
                    bytes
                };
                std::thread::scope(|s| {
                    let other = s.spawn(count);
                    count() + other.join().unwrap()
                })
            });
            assert_eq!(total, data.len(), "{how:?}");
        }
    }

    /// `--threads 1` (a pool of one thread) inflates on that thread; more threads keep
    /// an inflate thread per file.
    #[test]
    fn one_thread_inflates_inline_more_keep_an_inflate_thread() {
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(Inflate::for_pool)
        };
        assert_eq!(on(1), Inflate::Inline);
        assert_eq!(on(2), Inflate::OwnThread);
        assert_eq!(on(3), Inflate::OwnThread);
    }

    fn bz2(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn xz(data: &[u8]) -> Vec<u8> {
        let mut w =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(6)).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn lz4(data: &[u8]) -> Vec<u8> {
        let mut w = lz4_flex::frame::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    /// Issue 15: bzip2, xz and lz4 by their magic bytes, each multi-stream, and a cut
    /// one fails (so the file is marked incomplete).
    #[test]
    fn bzip2_xz_and_lz4_multi_stream_and_cut() {
        let data: Vec<u8> = (0..50_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        type Encode = fn(&[u8]) -> Vec<u8>;
        let encoders: [(Compression, Encode); 3] = [
            (Compression::Bzip2, bz2),
            (Compression::Xz, xz),
            (Compression::Lz4, lz4),
        ];
        for (kind, encode) in encoders {
            let one = encode(&data);
            let (c, out) = read_all(&one);
            assert_eq!((c, out.unwrap()), (kind, data.clone()), "{kind:?}");
            let mut two = encode(b"one\n");
            two.extend(encode(b"two\n"));
            assert_eq!(read_all(&two).1.unwrap(), b"one\ntwo\n", "{kind:?}");
            let cut = read_all(&one[..one.len() / 2]).1;
            assert!(cut.is_err(), "{kind:?}: a cut stream must fail");
        }
    }

    #[test]
    fn archives_are_named() {
        let err = |b: &[u8]| open(b).err().map(|e| e.to_string());
        let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00rest of a zip";
        assert_eq!(err(zip).as_deref(), Some("zip archive: unpack it first"));
        assert_eq!(
            err(b"7z\xbc\xaf\x27\x1c\x00\x04").as_deref(),
            Some("7z archive: unpack it first")
        );
        assert_eq!(
            err(b"Rar!\x1a\x07\x01\x00").as_deref(),
            Some("rar archive: unpack it first")
        );
        let mut tar = vec![0u8; 1024];
        tar[..9].copy_from_slice(b"access.lo");
        tar[257..263].copy_from_slice(b"ustar\0");
        assert_eq!(err(&tar).as_deref(), Some("tar archive: unpack it first"));
        assert_eq!(
            err(&gzip(&tar)).as_deref(),
            Some("tar archive: unpack it first")
        );
        assert_eq!(
            err(&xz(&tar)).as_deref(),
            Some("tar archive: unpack it first")
        );
        // Text that merely mentions them is text.
        assert!(err(b"PK is a zip\nustar\n").is_none());
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
