//! Framing: a byte stream → numbered lines.
//!
//! Lines are bytes (not guaranteed UTF-8), ending in LF or CRLF. A line longer than the
//! cap is reported as [`Frame::TooLong`] and never buffered whole. A read error (a
//! truncated or corrupt archive) ends the stream: every complete line before it was
//! delivered, the unterminated last line is dropped, and the error is returned.

use std::io::{self, Read};

/// The longest line kept; a longer one is malformed.
pub const MAX_LINE: usize = 1024 * 1024;
const CHUNK: usize = 256 * 1024;

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

/// Calls `f(line_number, frame)` for every line of `r` (numbered from 1).
pub fn for_each_line<R: Read + ?Sized>(
    r: &mut R,
    max_line: usize,
    mut f: impl FnMut(u64, Frame<'_>),
) -> End {
    let mut buf = vec![0u8; max_line + 2 * CHUNK];
    let (mut start, mut end) = (0usize, 0usize);
    // Bytes of the current line already examined for a newline.
    let mut scanned = 0usize;
    // Inside a line already known to be too long: discard until its newline.
    let mut skipping = false;
    let mut line_no = 0u64;
    let strip_cr = |l: &[u8]| -> usize {
        if l.last() == Some(&b'\r') {
            l.len() - 1
        } else {
            l.len()
        }
    };
    loop {
        if buf.len() - end < CHUNK {
            buf.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match r.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return End {
                    error: Some(e),
                    dropped_partial_line: end > start || skipping,
                    lines: line_no,
                }
            }
        };
        if n == 0 {
            if skipping {
                line_no += 1;
                f(line_no, Frame::TooLong);
            } else if end > start {
                line_no += 1;
                let line = &buf[start..end];
                if line.len() > max_line {
                    f(line_no, Frame::TooLong);
                } else {
                    f(line_no, Frame::Line(&line[..strip_cr(line)]));
                }
            }
            return End {
                error: None,
                dropped_partial_line: false,
                lines: line_no,
            };
        }
        end += n;
        let mut from = start + scanned;
        while let Some(p) = memchr::memchr(b'\n', &buf[from..end]) {
            let nl = from + p;
            line_no += 1;
            if skipping {
                skipping = false;
                f(line_no, Frame::TooLong);
            } else {
                let line = &buf[start..nl];
                if line.len() > max_line + 1 {
                    f(line_no, Frame::TooLong);
                } else {
                    let len = strip_cr(line);
                    if len > max_line {
                        f(line_no, Frame::TooLong);
                    } else {
                        f(line_no, Frame::Line(&line[..len]));
                    }
                }
            }
            start = nl + 1;
            from = start;
        }
        scanned = end - start;
        if scanned > max_line + 1 {
            // Too long already: forget what we have and skip to the next newline.
            skipping = true;
            start = end;
            scanned = 0;
        }
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
