//! The CRI container-log wrapper that Kubernetes runtimes (containerd, CRI-O) write
//! around each line: `TIMESTAMP STREAM TAG MESSAGE`, e.g.
//! `2024-05-01T10:00:00.123456789Z stdout F {"status":200,...}`. The message is read by
//! the format inside; the wrapper's own time is not used (the access line has its own).
//!
//! A `P` (partial) tag marks a piece of a line the runtime split (over 16 KiB); pieces
//! are not joined: such a line is malformed, with that reason.

use super::{LineFormat, Malformed, Request};

pub struct Cri {
    inner: Box<dyn LineFormat>,
    name: String,
}

impl Cri {
    pub fn new(inner: Box<dyn LineFormat>) -> Cri {
        let name = format!("cri+{}", inner.name());
        Cri { inner, name }
    }
}

/// The message of a CRI line, or why it is not one.
fn message(line: &[u8]) -> Result<&[u8], Malformed> {
    let mut parts = line.splitn(4, |&c| c == b' ');
    let (Some(time), Some(stream), Some(tag), Some(msg)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a CRI container-log line");
    };
    let time_like = time.len() >= 20 && time[4] == b'-' && time[10] == b'T';
    if !time_like || !matches!(stream, b"stdout" | b"stderr") {
        return Err("not a CRI container-log line");
    }
    match tag {
        b"F" => Ok(msg),
        b"P" => Err("partial CRI line (P): pieces of a split line are not joined"),
        _ => Err("not a CRI container-log line"),
    }
}

impl LineFormat for Cri {
    fn name(&self) -> &str {
        &self.name
    }

    fn parse<'a>(&self, line: &'a [u8]) -> Result<Request<'a>, Malformed> {
        self.inner.parse(message(line)?)
    }

    fn comment(&mut self, line: &[u8]) {
        self.inner.comment(line);
    }

    fn reads_comments(&self) -> bool {
        self.inner.reads_comments()
    }

    fn neutral(&self, line: &[u8], reason: Malformed) -> bool {
        message(line).is_ok_and(|m| self.inner.neutral(m, reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::format::clf::Clf;

    #[test]
    fn unwraps_full_lines_only() {
        let cri = Cri::new(Box::new(Clf));
        assert_eq!(cri.name(), "cri+combined");
        let inner =
            r#"10.1.2.3 - - [01/May/2024:10:00:00 +0000] "GET /p/1 HTTP/1.1" 200 5 "-" "x""#;
        let line = format!("2024-05-01T10:00:00.123456789Z stdout F {inner}");
        let r = cri.parse(line.as_bytes()).unwrap();
        assert_eq!((&*r.remote, r.status), (&b"10.1.2.3"[..], 200));
        let partial = format!("2024-05-01T10:00:00.123456789+02:00 stderr P {inner}");
        assert_eq!(
            cri.parse(partial.as_bytes()).err(),
            Some("partial CRI line (P): pieces of a split line are not joined")
        );
        assert!(cri.parse(inner.as_bytes()).is_err());
        assert!(Clf.parse(line.as_bytes()).is_err());
        assert!(cri.parse(b"2024-05-01T10:00:00Z stdin F x").is_err());
    }
}
