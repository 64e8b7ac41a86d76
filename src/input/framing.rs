//! Framing: a byte stream → numbered lines, handed on as blocks of whole lines.
//!
//! Lines are bytes (not guaranteed UTF-8), ending in LF or CRLF. The [`Framer`] reads
//! the decompressed stream into blocks of about [`BLOCK`] bytes and cuts each after
//! its last newline: the lines are framed in place, and only the one line that
//! straddles two blocks is copied (to the start of the next). A block is parsed on its
//! own (so that several workers can share one file); its lines are numbered from 1 and
//! made absolute by whoever knows how many lines the blocks before it held.
//!
//! A line longer than the cap is reported as [`Frame::TooLong`] and never buffered
//! whole. A read error (a truncated or corrupt archive) ends the stream: every complete
//! line before it was delivered, the unterminated last line is dropped, and the error
//! is returned.

use std::io::{self, Read};

/// The longest line kept; a longer one is malformed.
pub const MAX_LINE: usize = 1024 * 1024;
/// Bytes of whole lines per block (at least; a block ends after its last newline).
pub const BLOCK: usize = 1024 * 1024;
/// Most bytes asked of the stream in one read past a block's first [`BLOCK`] bytes.
const CHUNK: usize = 256 * 1024;

#[derive(Clone, Copy)]
pub enum Frame<'a> {
    Line(&'a [u8]),
    TooLong,
}

/// How a stream ended.
#[derive(Debug)]
pub struct End {
    /// `None` for a clean end of input.
    pub error: Option<io::Error>,
    /// An unterminated last line was dropped because the stream failed.
    pub dropped_partial_line: bool,
    pub lines: u64,
}

/// One piece of a framed stream, numbered in stream order by `seq` (from 0).
pub struct Block {
    pub seq: u64,
    pub kind: BlockKind,
}

pub enum BlockKind {
    /// `buf[..len]`: whole lines, each ending in LF; only the last block of a stream
    /// may end in an unterminated line.
    Lines { buf: Vec<u8>, len: usize },
    /// One line longer than the cap (skipped, never buffered whole).
    TooLong,
    /// The stream failed here: every complete line before it was handed on.
    Failed {
        error: io::Error,
        dropped_partial_line: bool,
    },
}

impl Block {
    /// Calls `f(n, frame)` for each line of the block (`n` from 1 within it) and
    /// returns how many lines it holds. `max_line` as given to the [`Framer`].
    #[inline]
    pub fn for_each_line(&self, max_line: usize, mut f: impl FnMut(u64, Frame<'_>)) -> u64 {
        match &self.kind {
            BlockKind::Lines { buf, len } => {
                let text = &buf[..*len];
                let (mut start, mut n) = (0usize, 0u64);
                for nl in memchr::memchr_iter(b'\n', text) {
                    n += 1;
                    let line = strip_cr(&text[start..nl]);
                    f(n, capped(line, max_line));
                    start = nl + 1;
                }
                if start < text.len() {
                    // The stream's unterminated last line: its cap counts a CR too.
                    let line = &text[start..];
                    n += 1;
                    if line.len() > max_line {
                        f(n, Frame::TooLong);
                    } else {
                        f(n, Frame::Line(strip_cr(line)));
                    }
                }
                n
            }
            BlockKind::TooLong => {
                f(1, Frame::TooLong);
                1
            }
            BlockKind::Failed { .. } => 0,
        }
    }

    /// The buffer, for reuse once the block is parsed.
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self.kind {
            BlockKind::Lines { buf, .. } => Some(buf),
            _ => None,
        }
    }
}

#[inline]
fn strip_cr(l: &[u8]) -> &[u8] {
    match l {
        [rest @ .., b'\r'] => rest,
        _ => l,
    }
}

#[inline]
fn capped(line: &[u8], max_line: usize) -> Frame<'_> {
    if line.len() > max_line {
        Frame::TooLong
    } else {
        Frame::Line(line)
    }
}

/// Cuts a byte stream into [`Block`]s.
pub struct Framer<R> {
    r: R,
    max_line: usize,
    /// Size of every buffer: a block, plus room for a line of up to the cap carried
    /// over from the block before.
    cap: usize,
    buf: Vec<u8>,
    len: usize,
    /// `buf[..end_lines]` are whole lines (0: no newline in `buf[..len]` yet).
    end_lines: usize,
    seq: u64,
    failed: Option<io::Error>,
    done: bool,
}

impl<R: Read> Framer<R> {
    pub fn new(r: R, max_line: usize) -> Self {
        Framer {
            r,
            max_line,
            cap: BLOCK.max(max_line + 2) + CHUNK,
            buf: Vec::new(),
            len: 0,
            end_lines: 0,
            seq: 0,
            failed: None,
            done: false,
        }
    }

    /// The next block, `None` after the last. `spare` gives a buffer to fill (a used
    /// one handed back, or an empty `Vec`).
    pub fn next_block(&mut self, spare: &mut dyn FnMut() -> Vec<u8>) -> Option<Block> {
        let kind = self.next_kind(spare)?;
        let seq = self.seq;
        self.seq += 1;
        Some(Block { seq, kind })
    }

    fn next_kind(&mut self, spare: &mut dyn FnMut() -> Vec<u8>) -> Option<BlockKind> {
        if self.done {
            return None;
        }
        if self.buf.len() < self.cap {
            self.buf.resize(self.cap, 0);
        }
        loop {
            if let Some(error) = self.failed.take() {
                self.done = true;
                return Some(BlockKind::Failed {
                    error,
                    dropped_partial_line: self.len > 0,
                });
            }
            if self.end_lines > 0 && (self.len >= BLOCK || self.len == self.cap) {
                return Some(self.hand_over(spare));
            }
            if self.end_lines == 0 && self.len > self.max_line + 1 {
                return Some(self.skip_long_line());
            }
            let window = self.cap.min(BLOCK.max(self.len + CHUNK));
            match self.r.read(&mut self.buf[self.len..window]) {
                Ok(0) => {
                    self.done = true;
                    if self.len == 0 {
                        return None;
                    }
                    let len = std::mem::take(&mut self.len);
                    let buf = std::mem::take(&mut self.buf);
                    return Some(BlockKind::Lines { buf, len });
                }
                Ok(n) => {
                    if let Some(p) = memchr::memrchr(b'\n', &self.buf[self.len..self.len + n]) {
                        self.end_lines = self.len + p + 1;
                    }
                    self.len += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = Some(e);
                    // Hand on the whole lines first; the partial one is dropped.
                    if self.end_lines > 0 {
                        return Some(self.hand_over(spare));
                    }
                }
            }
        }
    }

    /// Hands on `buf[..end_lines]`; the partial line after it moves to a new buffer.
    fn hand_over(&mut self, spare: &mut dyn FnMut() -> Vec<u8>) -> BlockKind {
        let mut next = spare();
        if next.len() < self.cap {
            next.resize(self.cap, 0);
        }
        let tail = self.len - self.end_lines;
        next[..tail].copy_from_slice(&self.buf[self.end_lines..self.len]);
        let full = std::mem::replace(&mut self.buf, next);
        let len = self.end_lines;
        self.len = tail;
        self.end_lines = 0;
        BlockKind::Lines { buf: full, len }
    }

    /// The partial line in `buf` is over the cap: reads on to its newline, keeping
    /// only what follows it.
    fn skip_long_line(&mut self) -> BlockKind {
        loop {
            let window = CHUNK.min(self.buf.len());
            match self.r.read(&mut self.buf[..window]) {
                Ok(0) => {
                    // The stream's last line, unterminated: still one (too long) line.
                    self.done = true;
                    self.len = 0;
                    return BlockKind::TooLong;
                }
                Ok(n) => {
                    if let Some(p) = memchr::memchr(b'\n', &self.buf[..n]) {
                        self.buf.copy_within(p + 1..n, 0);
                        self.len = n - p - 1;
                        self.end_lines =
                            memchr::memrchr(b'\n', &self.buf[..self.len]).map_or(0, |q| q + 1);
                        return BlockKind::TooLong;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    self.done = true;
                    return BlockKind::Failed {
                        error,
                        dropped_partial_line: true,
                    };
                }
            }
        }
    }
}

/// Calls `f(line_number, frame)` for every line of `r` (numbered from 1), on the
/// calling thread.
pub fn for_each_line<R: Read + ?Sized>(
    r: &mut R,
    max_line: usize,
    mut f: impl FnMut(u64, Frame<'_>),
) -> End {
    let mut framer = Framer::new(r, max_line);
    let mut lines = 0u64;
    let mut spare: Option<Vec<u8>> = None;
    while let Some(block) = framer.next_block(&mut || spare.take().unwrap_or_default()) {
        if let BlockKind::Failed {
            error,
            dropped_partial_line,
        } = block.kind
        {
            return End {
                error: Some(error),
                dropped_partial_line,
                lines,
            };
        }
        let before = lines;
        lines += block.for_each_line(max_line, |n, frame| f(before + n, frame));
        spare = block.into_buffer();
    }
    End {
        error: None,
        dropped_partial_line: false,
        lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(input: &[u8], max: usize) -> (Vec<String>, End) {
        let mut out = Vec::new();
        let end = for_each_line(&mut &input[..], max, |n, f| {
            out.push(match f {
                Frame::Line(l) => format!("{n}:{}", String::from_utf8_lossy(l)),
                Frame::TooLong => format!("{n}:<too long>"),
            })
        });
        (out, end)
    }

    #[test]
    fn lf_crlf_and_missing_final_newline() {
        let (l, end) = frames(b"a\r\nb\n\nc", 100);
        assert_eq!(l, ["1:a", "2:b", "3:", "4:c"]);
        assert!(end.error.is_none());
        assert_eq!(end.lines, 4);
    }

    #[test]
    fn long_lines_are_skipped_not_buffered() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 2 * CHUNK + 10 * 1024));
        input.extend(b"\nfine\n");
        input.extend(std::iter::repeat_n(b'y', 11));
        let (l, _) = frames(&input, 10);
        assert_eq!(l, ["1:ok", "2:<too long>", "3:fine", "4:<too long>"]);
        let (l, _) = frames(b"0123456789\n01234567890\n", 10);
        assert_eq!(l, ["1:0123456789", "2:<too long>"]);
    }

    /// A reader that hands out at most `step` bytes a read.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// What framing must give, by a plain split (the rules in the module comment).
    fn reference(input: &[u8], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        let mut parts: Vec<&[u8]> = input.split(|&c| c == b'\n').collect();
        let last = parts.pop().unwrap();
        for l in parts {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            out.push((l.len() <= max).then(|| l.to_vec()));
        }
        if !last.is_empty() {
            out.push(
                (last.len() <= max).then(|| last.strip_suffix(b"\r").unwrap_or(last).to_vec()),
            );
        }
        out
    }

    /// Blocks end after a newline and are numbered in order; whatever the read sizes,
    /// their lines are the stream's lines, lines straddling blocks and long lines too.
    #[test]
    fn blocks_frame_the_stream_whatever_the_reads() {
        let mut input = Vec::new();
        for i in 0..40_000u32 {
            input.extend(format!("line {i} {}\n", "y".repeat((i % 97) as usize)).bytes());
            if i % 9_001 == 5 {
                input.extend(std::iter::repeat_n(b'z', BLOCK + 3 * CHUNK + i as usize));
                input.extend(b"\r\n");
            }
            if i % 7_919 == 3 {
                input.extend(b"crlf\r\n");
            }
        }
        input.extend(b"unterminated\r");
        for max in [MAX_LINE, 200, 16] {
            for step in [1 << 20, 65_537, 4_099] {
                let mut framer = Framer::new(Trickle(&input, step), max);
                let (mut got, mut seq) = (Vec::new(), 0);
                while let Some(block) = framer.next_block(&mut Vec::new) {
                    assert_eq!(block.seq, seq);
                    seq += 1;
                    if let BlockKind::Lines { buf, len } = &block.kind {
                        assert!(buf[..*len].ends_with(b"\n") || !framer_more(&framer));
                    }
                    let n = block.for_each_line(max, |_, f| {
                        got.push(match f {
                            Frame::Line(l) => Some(l.to_vec()),
                            Frame::TooLong => None,
                        })
                    });
                    assert!(n > 0);
                }
                assert!(seq > 3, "{seq} blocks");
                assert!(got == reference(&input, max), "max {max}, step {step}");
            }
        }
    }

    fn framer_more<R>(f: &Framer<R>) -> bool {
        !f.done
    }

    struct FailAfter<'a>(&'a [u8]);
    impl Read for FailAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
            }
            let n = self.0.len().min(buf.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_failing_stream_drops_only_the_partial_line() {
        let mut out = Vec::new();
        let end = for_each_line(&mut FailAfter(b"one\ntwo\nthr"), 100, |_, f| {
            if let Frame::Line(l) = f {
                out.push(l.to_vec())
            }
        });
        assert_eq!(out, [b"one".to_vec(), b"two".to_vec()]);
        assert!(end.error.is_some());
        assert!(end.dropped_partial_line);
    }
}
