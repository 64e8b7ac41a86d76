//! Access points into gzip inputs, recorded while the first pass inflates them, so that
//! a later read can inflate only the spans it needs (as zlib's `examples/zran.c` does).
//!
//! [`IndexingGz`] inflates a (multi-member) gzip stream for the first pass and, every
//! [`SPAN`] bytes of text or more, at the next deflate block boundary, records an
//! [`AccessPoint`]: the compressed bit offset, the 32 KiB of text before it (the
//! window a restarted inflate needs; kept deflate-compressed, about 8 KiB of log text)
//! and the number of the first line that starts at or after it. The start of a gzip
//! member is an access point that needs no window. [`SpanReader`] inflates from an
//! access point onwards, across later members, to the end of the file or until its
//! reader stops.
//!
//! Why hand-written over zlib's API (zlib-rs through `libz-rs-sys`, the inflate flate2
//! already uses here): flate2 has no `Z_BLOCK` flush and cannot start inflating at a bit
//! offset with a preset window; the one crate that does random access
//! (`indexed_deflate` 0.1) inflates with miniz_oxide (slower here) and keeps its index in
//! a file on disk.
//!
//! Memory: one point per [`SPAN`] (4 MiB) of text, about 8 KiB each for log text: about
//! 0.2% of the text, 4 MiB for the 2 GB bench set. Each span's compressed bytes carry a
//! CRC-32, so that a file changed after the first pass is caught when read again.
//!
//! A plain (uncompressed) input has access points too ([`IndexingPlain`]): there the
//! text is the file, a point is a byte offset to seek to (every [`PLAIN_SPAN`] bytes, no
//! window: about 60 bytes each), and its span's bytes carry the CRC-32.

use libz_rs_sys as z;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// Text between access points (at least; the next block boundary after it).
pub const SPAN: u64 = 4 * 1024 * 1024;
/// Text between access points of a plain input: a point costs no window there, and
/// the lines from a point to the first one wanted are framed only to be dropped.
pub const PLAIN_SPAN: u64 = 256 * 1024;
/// The deflate window: a restarted inflate needs the 32 KiB before its point.
const WINDOW: usize = 32 * 1024;
/// Compressed bytes read at a time.
const IN_BUFFER: usize = 256 * 1024;

/// A place where inflating can start.
#[derive(Debug, Clone)]
pub struct AccessPoint {
    /// Offset in the text (the file's whole inflated output).
    pub out: u64,
    /// Compressed bytes consumed before the point; with `bits > 0`, the last `bits`
    /// bits of the byte before it belong to the point too.
    pub input: u64,
    pub bits: u8,
    /// Starts a gzip member (header first, no window).
    pub member_start: bool,
    /// The 32 KiB of text before `out`, raw-deflate-compressed (empty at a member start).
    window: Box<[u8]>,
    /// The number of the first line that starts at or after `out`, and whether one
    /// starts right at it (else the text from `out` to the next newline ends the line
    /// before).
    pub first_line: u64,
    pub at_line_start: bool,
    /// CRC-32 of the compressed bytes from `input` up to the next point's `input`
    /// (`None` for the last point, whose span ends where the stream ended).
    pub crc: Option<u32>,
}

/// The access points of one gzip input (or a plain one: `plain`), in order of `out`.
#[derive(Debug, Clone, Default)]
pub struct GzIndex {
    pub points: Vec<AccessPoint>,
    /// The input is plain text: a point's `input` is its `out`, read as is.
    pub plain: bool,
}

/// Adds `point` to `index`, closing the span before it with `span_crc` (the CRC-32 of
/// its bytes as read), which starts again from 0 for the span `point` opens.
fn push_point(index: &Mutex<GzIndex>, point: AccessPoint, span_crc: &mut u32) {
    let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(last) = index.points.last_mut() {
        last.crc = Some(*span_crc);
    }
    index.points.push(point);
    *span_crc = 0;
}

impl GzIndex {
    /// The last point whose first line is at or before `line`.
    pub fn point_for_line(&self, line: u64) -> Option<usize> {
        let i = self.points.partition_point(|p| p.first_line <= line);
        i.checked_sub(1)
    }

    /// Bytes held (for the README's memory figure and tests).
    pub fn heap_bytes(&self) -> usize {
        self.points
            .iter()
            .map(|p| p.window.len() + std::mem::size_of::<AccessPoint>())
            .sum()
    }
}

/// A zlib inflate stream (boxed: zlib's state points back at it).
struct Inflater {
    strm: Box<z::z_stream>,
}

// SAFETY: the stream owns its state; nothing else points into it.
unsafe impl Send for Inflater {}

/// Gzip header and trailer, any member (`16 + 15`).
const GZIP_BITS: i32 = 31;
/// Raw deflate (`-15`): inflating from an access point inside a member.
const RAW_BITS: i32 = -15;

impl Inflater {
    fn new(window_bits: i32) -> io::Result<Self> {
        let mut strm = Box::new(z::z_stream::default());
        // SAFETY: a fresh stream, the version and size this library expects.
        let ret = unsafe {
            z::inflateInit2_(
                &mut *strm,
                window_bits,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            )
        };
        check(ret, &strm)?;
        Ok(Inflater { strm })
    }

    fn reset(&mut self, window_bits: i32) -> io::Result<()> {
        // SAFETY: an initialised stream.
        let ret = unsafe { z::inflateReset2(&mut *self.strm, window_bits) };
        check(ret, &self.strm)
    }

    /// Inflates `input` into `out`; returns (consumed, produced, zlib's return code).
    fn inflate(&mut self, input: &[u8], out: &mut [u8], flush: i32) -> (usize, usize, i32) {
        self.strm.next_in = input.as_ptr();
        self.strm.avail_in = input.len().min(u32::MAX as usize) as u32;
        self.strm.next_out = out.as_mut_ptr();
        self.strm.avail_out = out.len().min(u32::MAX as usize) as u32;
        let (avail_in, avail_out) = (self.strm.avail_in, self.strm.avail_out);
        // SAFETY: the pointers and lengths above describe live buffers.
        let ret = unsafe { z::inflate(&mut *self.strm, flush) };
        let used = (avail_in - self.strm.avail_in) as usize;
        let made = (avail_out - self.strm.avail_out) as usize;
        self.strm.next_in = std::ptr::null();
        self.strm.next_out = std::ptr::null_mut();
        (used, made, ret)
    }

    /// The window: up to 32 KiB of the text before the current position.
    fn window(&self) -> Vec<u8> {
        let mut w = vec![0u8; WINDOW];
        let mut len: u32 = 0;
        // SAFETY: `w` has room for a full window.
        unsafe { z::inflateGetDictionary(&*self.strm, w.as_mut_ptr(), &mut len) };
        w.truncate(len as usize);
        w
    }

    fn prime(&mut self, bits: u8, value: u8) -> io::Result<()> {
        // SAFETY: an initialised stream.
        let ret =
            unsafe { z::inflatePrime(&mut *self.strm, bits as i32, (value >> (8 - bits)) as i32) };
        check(ret, &self.strm)
    }

    fn set_window(&mut self, window: &[u8]) -> io::Result<()> {
        // SAFETY: the slice is live for the call.
        let ret = unsafe {
            z::inflateSetDictionary(&mut *self.strm, window.as_ptr(), window.len() as u32)
        };
        check(ret, &self.strm)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, ended once.
        unsafe { z::inflateEnd(&mut *self.strm) };
    }
}

fn check(ret: i32, strm: &z::z_stream) -> io::Result<()> {
    if ret == z::Z_OK {
        Ok(())
    } else {
        Err(zlib_error(ret, strm))
    }
}

fn zlib_error(ret: i32, strm: &z::z_stream) -> io::Error {
    let msg = if strm.msg.is_null() {
        None
    } else {
        // SAFETY: zlib's messages are static C strings.
        unsafe { std::ffi::CStr::from_ptr(strm.msg) }.to_str().ok()
    };
    let what = match (ret, msg) {
        (_, Some(m)) => format!("corrupt deflate stream: {m}"),
        (z::Z_MEM_ERROR, None) => "out of memory".to_string(),
        _ => format!("corrupt deflate stream (zlib error {ret})"),
    };
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn incomplete() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "incomplete deflate stream")
}

fn truncated() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "unexpected end of file")
}

fn crc32(crc: u32, bytes: &[u8]) -> u32 {
    // SAFETY: a live slice (crc32 takes a 32-bit length: fed in pieces below that).
    bytes.chunks(1 << 30).fold(crc, |c, part| unsafe {
        z::crc32(c as _, part.as_ptr(), part.len() as u32) as u32
    })
}

/// A window as [`IndexingGz::pack`] kept it.
fn unpack(packed: &[u8]) -> io::Result<Vec<u8>> {
    match packed.split_first() {
        Some((1, deflated)) => {
            let mut window = Vec::with_capacity(WINDOW);
            flate2::read::DeflateDecoder::new(deflated).read_to_end(&mut window)?;
            Ok(window)
        }
        Some((_, raw)) => Ok(raw.to_vec()),
        None => Ok(Vec::new()),
    }
}

/// Compressed input read through a buffer, counting what inflate consumed.
struct Input<R> {
    raw: R,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
    /// Bytes consumed before `buf[pos]`.
    consumed: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(raw: R) -> Self {
        Input {
            raw,
            buf: vec![0u8; IN_BUFFER].into_boxed_slice(),
            pos: 0,
            len: 0,
            consumed: 0,
            eof: false,
        }
    }

    /// The unconsumed bytes, reading more when none are left (empty at the end).
    fn available(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.len && !self.eof {
            match self.raw.read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.pos = 0;
                    self.len = n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(&self.buf[self.pos..self.len])
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.consumed += n as u64;
    }
}

/// Inflates a gzip stream (every member, as `MultiGzDecoder` does) and records its
/// access points into a shared [`GzIndex`] as it goes.
pub struct IndexingGz<R> {
    input: Input<R>,
    inflater: Inflater,
    /// Between members: the next byte starts a gzip header (or the stream ends).
    between_members: bool,
    index: Arc<Mutex<GzIndex>>,
    out: u64,
    newlines: u64,
    last_byte_newline: bool,
    /// `out` of the last point (none yet: `None`).
    last_point: Option<u64>,
    /// CRC-32 of the compressed bytes consumed since the last point.
    crc: u32,
    /// A failure that ends the stream (returned again on later reads).
    failed: Option<(io::ErrorKind, String)>,
    window_packer: flate2::Compress,
    span: u64,
    /// Where in the current member inflating is, and where the member started (for
    /// the wording of errors).
    member: MemberPart,
    member_start: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MemberPart {
    Header,
    Data,
    Trailer,
}

impl<R: Read> IndexingGz<R> {
    /// `raw` starts with the gzip magic bytes.
    pub fn new(raw: R, index: Arc<Mutex<GzIndex>>) -> io::Result<Self> {
        Self::with_span(raw, index, SPAN)
    }

    /// [`Self::new`] with access points every `span` bytes of text (tests use small ones).
    pub fn with_span(raw: R, index: Arc<Mutex<GzIndex>>, span: u64) -> io::Result<Self> {
        Ok(IndexingGz {
            span,
            member: MemberPart::Header,
            member_start: 0,
            input: Input::new(raw),
            inflater: Inflater::new(GZIP_BITS)?,
            between_members: true,
            index,
            out: 0,
            newlines: 0,
            last_byte_newline: true,
            last_point: None,
            crc: 0,
            failed: None,
            window_packer: flate2::Compress::new(flate2::Compression::fast(), false),
        })
    }

    fn due(&self) -> bool {
        self.last_point.is_none_or(|p| self.out - p >= self.span)
    }

    fn add_point(&mut self, bits: u8, member_start: bool) {
        let window = if member_start {
            Box::default()
        } else {
            self.pack(&self.inflater.window())
        };
        let point = AccessPoint {
            out: self.out,
            input: self.input.consumed,
            bits,
            member_start,
            window,
            first_line: self.newlines + 1 + u64::from(!self.last_byte_newline),
            at_line_start: self.last_byte_newline,
            crc: None,
        };
        push_point(&self.index, point, &mut self.crc);
        self.last_point = Some(self.out);
    }

    /// The window, raw-deflate-compressed (about a quarter of its size for log text);
    /// kept as is, flagged by a leading 0 byte, should compressing fail.
    fn pack(&mut self, window: &[u8]) -> Box<[u8]> {
        self.window_packer.reset();
        let mut out = Vec::with_capacity(window.len() + 64);
        out.push(1u8);
        loop {
            let done = self.window_packer.total_in() as usize;
            match self.window_packer.compress_vec(
                &window[done..],
                &mut out,
                flate2::FlushCompress::Finish,
            ) {
                Ok(flate2::Status::StreamEnd) => return out.into_boxed_slice(),
                Ok(_) => out.reserve(4096),
                Err(_) => return [&[0u8][..], window].concat().into_boxed_slice(),
            }
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.failed = Some((e.kind(), e.to_string()));
        e
    }

    fn step(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.between_members {
                if self.input.available()?.is_empty() {
                    return Ok(0);
                }
                self.inflater.reset(GZIP_BITS)?;
                self.member = MemberPart::Header;
                self.member_start = self.input.consumed;
                if self.due() {
                    self.add_point(0, true);
                }
                self.between_members = false;
            }
            let input = self.input.available()?;
            let at_end = input.is_empty();
            let (used, made, ret) = self.inflater.inflate(input, buf, z::Z_BLOCK);
            self.crc = crc32(
                self.crc,
                &self.input.buf[self.input.pos..self.input.pos + used],
            );
            self.input.consume(used);
            if made > 0 {
                let text = &buf[..made];
                self.newlines += memchr::memchr_iter(b'\n', text).count() as u64;
                self.last_byte_newline = text[made - 1] == b'\n';
                self.out += made as u64;
            }
            match ret {
                z::Z_STREAM_END => self.between_members = true,
                _ if made > 0 && self.member == MemberPart::Header => {
                    self.member = MemberPart::Data
                }
                _ => {}
            }
            match ret {
                z::Z_STREAM_END => {}
                z::Z_OK | z::Z_BUF_ERROR => {
                    // At the end of a deflate block that is not the member's last.
                    let data_type = self.inflater.strm.data_type;
                    if data_type & 128 != 0 && data_type & 64 == 0 && self.due() {
                        self.add_point((data_type & 7) as u8, false);
                    }
                    if data_type & 192 == 192 {
                        self.member = MemberPart::Trailer;
                    }
                    if used == 0 && made == 0 && at_end {
                        // Worded as flate2's `MultiGzDecoder` words it (the first pass
                        // used it before; report.json shows the message).
                        let in_member = self.input.consumed - self.member_start;
                        return Err(match self.member {
                            MemberPart::Data => incomplete(),
                            // Past a 10-byte header: in the deflate data.
                            MemberPart::Header if in_member > 10 => incomplete(),
                            _ => truncated(),
                        });
                    }
                }
                z::Z_DATA_ERROR if self.member == MemberPart::Header => {
                    // flate2 reads a whole 10-byte header before it looks at it.
                    let left = self.input.consumed + (self.input.len - self.input.pos) as u64;
                    return Err(if self.input.eof && left - self.member_start < 10 {
                        truncated()
                    } else {
                        io::Error::new(io::ErrorKind::InvalidInput, "invalid gzip header")
                    });
                }
                other => return Err(zlib_error(other, &self.inflater.strm)),
            }
            if made > 0 || buf.is_empty() {
                return Ok(made);
            }
        }
    }
}

impl<R: Read> Read for IndexingGz<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg)) = &self.failed {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        self.step(buf).map_err(|e| self.fail(e))
    }
}

/// Hands a plain input on as it is and records its access points into a shared
/// [`GzIndex`]: one every [`PLAIN_SPAN`] bytes, with the CRC-32 of each span.
pub struct IndexingPlain<R> {
    inner: R,
    index: Arc<Mutex<GzIndex>>,
    out: u64,
    newlines: u64,
    last_byte_newline: bool,
    next_point: u64,
    crc: u32,
    span: u64,
}

impl<R: Read> IndexingPlain<R> {
    pub fn new(inner: R, index: Arc<Mutex<GzIndex>>) -> Self {
        Self::with_span(inner, index, PLAIN_SPAN)
    }

    /// [`Self::new`] with access points every `span` bytes (tests use small ones).
    pub fn with_span(inner: R, index: Arc<Mutex<GzIndex>>, span: u64) -> Self {
        index.lock().unwrap_or_else(|e| e.into_inner()).plain = true;
        IndexingPlain {
            inner,
            index,
            out: 0,
            newlines: 0,
            last_byte_newline: true,
            next_point: 0,
            crc: 0,
            span,
        }
    }

    fn add_point(&mut self) {
        let point = AccessPoint {
            out: self.out,
            input: self.out,
            bits: 0,
            member_start: false,
            window: Box::default(),
            first_line: self.newlines + 1 + u64::from(!self.last_byte_newline),
            at_line_start: self.last_byte_newline,
            crc: None,
        };
        push_point(&self.index, point, &mut self.crc);
        self.next_point = self.out + self.span;
    }
}

impl<R: Read> Read for IndexingPlain<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.out == self.next_point {
            self.add_point();
        }
        // Never read across the next point, so that each span's CRC is its own.
        let room = (self.next_point - self.out).min(buf.len() as u64) as usize;
        let n = self.inner.read(&mut buf[..room])?;
        if n > 0 {
            let text = &buf[..n];
            self.crc = crc32(self.crc, text);
            self.newlines += memchr::memchr_iter(b'\n', text).count() as u64;
            self.last_byte_newline = text[n - 1] == b'\n';
            self.out += n as u64;
        }
        Ok(n)
    }
}

/// Inflates a gzip file from one of its access points onwards (or reads a plain one
/// from one of its points on).
pub struct SpanReader<'a, F> {
    input: Input<F>,
    /// `None` for a plain input: its bytes are the text.
    inflater: Option<Inflater>,
    /// Inflating a member's deflate data without its header (started inside it): its
    /// 8-byte trailer follows the end of the data.
    raw: bool,
    between_members: bool,
    index: &'a GzIndex,
    /// The point whose span the next compressed byte belongs to, the CRC-32 of that
    /// span so far, and whether the whole span has been seen from its start.
    span: usize,
    crc: u32,
    whole_span: bool,
    /// A span whose bytes differ from the first pass's.
    changed: bool,
}

impl<'a, F: Read + Seek> SpanReader<'a, F> {
    /// Starts at point `at` of `index`, over `file` (the same compressed file).
    pub fn new(mut file: F, index: &'a GzIndex, at: usize) -> io::Result<Self> {
        let point = &index.points[at];
        let inflater = if index.plain {
            file.seek(SeekFrom::Start(point.input))?;
            None
        } else if point.member_start {
            file.seek(SeekFrom::Start(point.input))?;
            Some(Inflater::new(GZIP_BITS)?)
        } else {
            let mut inflater = Inflater::new(RAW_BITS)?;
            if point.bits > 0 {
                file.seek(SeekFrom::Start(point.input - 1))?;
                let mut byte = [0u8];
                file.read_exact(&mut byte)?;
                inflater.prime(point.bits, byte[0])?;
            } else {
                file.seek(SeekFrom::Start(point.input))?;
            }
            inflater.set_window(&unpack(&point.window)?)?;
            Some(inflater)
        };
        let mut input = Input::new(file);
        input.consumed = point.input;
        Ok(SpanReader {
            input,
            raw: inflater.is_some() && !point.member_start,
            inflater,
            between_members: false,
            index,
            span: at,
            crc: 0,
            whole_span: true,
            changed: false,
        })
    }

    /// Counts `n` consumed compressed bytes into the span CRCs.
    fn consume(&mut self, n: usize) {
        let mut from = self.input.pos;
        let end = self.input.pos + n;
        while from < end {
            let next = self.index.points.get(self.span + 1).map(|p| p.input);
            let here = self.input.consumed + (from - self.input.pos) as u64;
            let take = match next {
                Some(b) => ((b.saturating_sub(here)) as usize).min(end - from),
                None => end - from,
            };
            self.crc = crc32(self.crc, &self.input.buf[from..from + take]);
            from += take;
            let now = self.input.consumed + (from - self.input.pos) as u64;
            if next == Some(now) {
                if self.whole_span && self.index.points[self.span].crc != Some(self.crc) {
                    self.changed = true;
                }
                self.span += 1;
                self.crc = 0;
                self.whole_span = true;
            }
        }
        self.input.consume(n);
    }

    /// Reads on to the end of the current span (compressed bytes only) and says whether
    /// every span seen whole has the bytes the first pass saw.
    pub fn unchanged(mut self) -> bool {
        let Some(next) = self.index.points.get(self.span + 1).map(|p| p.input) else {
            return !self.changed;
        };
        while self.input.consumed < next {
            let Ok(avail) = self.input.available() else {
                return false;
            };
            if avail.is_empty() {
                return false;
            }
            let n = (avail.len() as u64).min(next - self.input.consumed) as usize;
            self.consume(n);
        }
        !self.changed
    }

    /// Skips a member's 8-byte trailer after raw deflate data.
    fn skip_trailer(&mut self) -> io::Result<()> {
        let mut left = 8;
        while left > 0 {
            let n = self.input.available()?.len().min(left);
            if n == 0 {
                return Err(truncated());
            }
            self.consume(n);
            left -= n;
        }
        Ok(())
    }
}

impl<F: Read + Seek> Read for SpanReader<'_, F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inflater.is_none() {
            let input = self.input.available()?;
            let n = input.len().min(buf.len());
            buf[..n].copy_from_slice(&input[..n]);
            self.consume(n);
            return Ok(n);
        }
        loop {
            if self.between_members {
                if self.input.available()?.is_empty() {
                    return Ok(0);
                }
                self.inflater()?.reset(GZIP_BITS)?;
                self.between_members = false;
            }
            let input = self.input.available()?;
            let at_end = input.is_empty();
            let inflater = self.inflater.as_mut().ok_or_else(not_gzip)?;
            let (used, made, ret) = inflater.inflate(input, buf, z::Z_NO_FLUSH);
            self.consume(used);
            match ret {
                z::Z_STREAM_END => {
                    if self.raw {
                        self.skip_trailer()?;
                        self.raw = false;
                    }
                    self.between_members = true;
                }
                z::Z_OK | z::Z_BUF_ERROR => {
                    if used == 0 && made == 0 && at_end {
                        return Err(truncated());
                    }
                }
                other => return Err(zlib_error(other, &self.inflater()?.strm)),
            }
            if made > 0 || buf.is_empty() {
                return Ok(made);
            }
        }
    }
}

impl<F> SpanReader<'_, F> {
    fn inflater(&mut self) -> io::Result<&mut Inflater> {
        self.inflater.as_mut().ok_or_else(not_gzip)
    }
}

fn not_gzip() -> io::Error {
    io::Error::other("a plain input is not inflated")
}

/// Lines `from..=to` (numbered as the first pass numbered them) of a text stream:
/// what [`crate::input::framing`] would frame of the whole text, cut to those lines.
/// Over a [`SpanReader`] ([`LineRange::new`]) the text starts at an access point;
/// over a whole stream ([`LineRange::from_start`]) at line 1, and [`LineRange::then`]
/// goes on to later lines of it without reading it again.
pub struct LineRange<R> {
    inner: R,
    /// The number of the line the next byte belongs to.
    line: u64,
    from: u64,
    to: u64,
    /// Bytes of a line that ends the span before the point, still to drop.
    partial: bool,
    done: bool,
    buf: Box<[u8]>,
    pos: usize,
    len: usize,
}

impl<'a, F: Read + Seek> LineRange<SpanReader<'a, F>> {
    /// Reads `file` (gzip, or plain when `index.plain`) from the access point at or
    /// before line `from`.
    pub fn new(file: F, index: &'a GzIndex, from: u64, to: u64) -> io::Result<Self> {
        let at = index
            .point_for_line(from)
            .ok_or_else(|| io::Error::other("no access point before the line"))?;
        let point = &index.points[at];
        let mut range = LineRange::from_start(SpanReader::new(file, index, at)?, from, to);
        range.line = point.first_line;
        range.partial = !point.at_line_start;
        Ok(range)
    }

    /// Whether the compressed bytes read are those the first pass read (see
    /// [`SpanReader::unchanged`]).
    pub fn unchanged(self) -> bool {
        self.inner.unchanged()
    }
}

impl<R: Read> LineRange<R> {
    /// Lines `from..=to` of `text`, whose first byte starts line 1.
    pub fn from_start(text: R, from: u64, to: u64) -> Self {
        LineRange {
            inner: text,
            line: 1,
            from,
            to,
            partial: false,
            done: false,
            buf: vec![0u8; 256 * 1024].into_boxed_slice(),
            pos: 0,
            len: 0,
        }
    }

    /// Goes on to lines `from..=to`, after the lines read so far.
    pub fn then(&mut self, from: u64, to: u64) {
        debug_assert!(from >= self.line, "ranges in order");
        self.from = from;
        self.to = to;
        self.done = false;
    }
}

impl<R: Read> Read for LineRange<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || out.is_empty() {
                return Ok(0);
            }
            if self.pos == self.len {
                self.len = self.inner.read(&mut self.buf)?;
                self.pos = 0;
                if self.len == 0 {
                    return Ok(0);
                }
            }
            let data = &self.buf[self.pos..self.len];
            // Drop the tail of the line before the point, then whole lines before `from`.
            if self.partial || self.line < self.from {
                match memchr::memchr(b'\n', data) {
                    Some(i) => {
                        self.pos += i + 1;
                        if self.partial {
                            self.partial = false;
                        } else {
                            self.line += 1;
                        }
                    }
                    None => self.pos = self.len,
                }
                continue;
            }
            let n = data.len().min(out.len());
            let mut give = n;
            for nl in memchr::memchr_iter(b'\n', &data[..n]) {
                let last = self.line == self.to;
                self.line += 1;
                if last {
                    give = nl + 1;
                    self.done = true;
                    break;
                }
            }
            out[..give].copy_from_slice(&data[..give]);
            self.pos += give;
            return Ok(give);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn text(lines: u64, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..lines)
            .flat_map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let pad = "x".repeat((x >> 58) as usize * 7);
                format!("line {i} {:x} {pad}\n", x >> 20).into_bytes()
            })
            .collect()
    }

    fn index_of(gz: &[u8]) -> (Vec<u8>, GzIndex, io::Result<()>) {
        let index = Arc::new(Mutex::new(GzIndex::default()));
        let mut r = IndexingGz::with_span(gz, index.clone(), 256 * 1024).unwrap();
        let mut out = Vec::new();
        let res = r.read_to_end(&mut out).map(|_| ());
        let index = index.lock().unwrap().clone();
        (out, index, res)
    }

    fn lines_of(text: &[u8], from: u64, to: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, l) in text.split_inclusive(|&b| b == b'\n').enumerate() {
            let n = i as u64 + 1;
            if (from..=to).contains(&n) {
                out.extend_from_slice(l);
            }
        }
        out
    }

    #[test]
    fn every_line_range_read_from_an_access_point_equals_the_full_read() {
        // Several members (each start a free point), two of them longer than a span.
        let a = text(15_000, 1);
        let b = text(10, 2);
        let c = text(12_000, 3);
        let mut gz = gzip(&a, 6);
        gz.extend(gzip(&b, 1));
        gz.extend(gzip(&c, 9));
        let all = [a.clone(), b, c].concat();
        let (out, index, res) = index_of(&gz);
        res.unwrap();
        assert_eq!(out, all);
        assert!(index.points.len() >= 4, "{} points", index.points.len());
        assert!(index
            .points
            .iter()
            .any(|p| !p.at_line_start && !p.member_start));
        let lines = all.iter().filter(|&&b| b == b'\n').count() as u64;
        for p in &index.points {
            let before = all[..p.out as usize]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64;
            let expect = before + 1 + u64::from(!p.at_line_start);
            assert_eq!(p.first_line, expect);
        }
        let ranges = [
            (1, 1),
            (1, 40),
            (14_990, 15_015),
            (15_005, 15_010),
            (lines - 3, lines),
            (lines, lines + 5),
        ];
        let mut more: Vec<(u64, u64)> = index
            .points
            .iter()
            .flat_map(|p| {
                [
                    (p.first_line, p.first_line + 2),
                    (p.first_line.saturating_sub(1).max(1), p.first_line),
                ]
            })
            .collect();
        more.extend(ranges);
        for (from, to) in more {
            let mut r = LineRange::new(io::Cursor::new(&gz), &index, from, to).unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, lines_of(&all, from, to), "lines {from}..={to}");
            assert!(r.unchanged(), "lines {from}..={to}");
        }
    }

    /// A plain input's points: every line range read from one equals the text's lines,
    /// a flipped byte in a span read whole is caught; and ranges read one after another
    /// from the start of a stream ([`LineRange::then`]) are the same lines.
    #[test]
    fn plain_points_and_ranges_in_order_give_the_lines() {
        let all = text(20_000, 5);
        let index = Arc::new(Mutex::new(GzIndex::default()));
        let mut out = Vec::new();
        IndexingPlain::with_span(&all[..], index.clone(), 64 * 1024)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, all);
        let index = index.lock().unwrap().clone();
        assert!(index.plain && index.points.len() > 10);
        assert!(index.points.iter().any(|p| !p.at_line_start));
        let ranges = [(1, 3), (40, 40), (5_000, 5_300), (19_990, 20_005)];
        for (from, to) in ranges.into_iter().chain(
            index
                .points
                .iter()
                .map(|p| (p.first_line.saturating_sub(1).max(1), p.first_line + 1)),
        ) {
            let mut r = LineRange::new(io::Cursor::new(&all), &index, from, to).unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            assert_eq!(got, lines_of(&all, from, to), "lines {from}..={to}");
            assert!(r.unchanged(), "lines {from}..={to}");
        }
        let mut changed = all.clone();
        changed[index.points[3].input as usize + 10] ^= 0x20;
        let from = index.points[3].first_line;
        let mut r = LineRange::new(io::Cursor::new(&changed), &index, from, from).unwrap();
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert!(!r.unchanged(), "a flipped byte in the span is caught");

        let mut seq = LineRange::from_start(&all[..], 1, 0);
        for (from, to) in ranges {
            seq.then(from, to);
            let mut got = Vec::new();
            seq.read_to_end(&mut got).unwrap();
            assert_eq!(
                got,
                lines_of(&all, from, to),
                "in order: lines {from}..={to}"
            );
        }
    }

    #[test]
    fn a_changed_file_is_caught_and_a_cut_one_fails_as_in_the_first_pass() {
        let a = text(30_000, 4);
        let gz = gzip(&a, 6);
        let (_, index, res) = index_of(&gz);
        res.unwrap();
        assert!(index.points.len() >= 3);
        let p = &index.points[1];
        let mut changed = gz.clone();
        let at = (p.input + 100) as usize;
        changed[at] ^= 0x10;
        let mut r = LineRange::new(
            io::Cursor::new(&changed),
            &index,
            p.first_line,
            p.first_line + 1,
        )
        .unwrap();
        let mut got = Vec::new();
        let _ = r.read_to_end(&mut got);
        assert!(!r.unchanged(), "a flipped bit in the span is caught");

        let cut = &gz[..gz.len() * 2 / 3];
        let (out, _, res) = index_of(cut);
        assert!(res.is_err());
        assert!(out.len() < a.len() && a.starts_with(&out));
        assert!(index_of(&gz[..gz.len() - 4]).2.is_err());
        let mut junk = gz.clone();
        junk.extend(b"not gzip");
        assert!(index_of(&junk).2.is_err());
    }
}
