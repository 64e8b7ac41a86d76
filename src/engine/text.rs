//! Log bytes as text: keys and lines as written in the reports, and request paths.

/// The written form of a key: UTF-8 as is, other bytes as `\xHH`.
pub fn display_key(key: &[u8]) -> String {
    let mut out = String::with_capacity(key.len());
    for chunk in key.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A CSV cell from log content: a leading `=`, `+`, `-`, `@`, tab or CR would start a
/// spreadsheet formula, so it is prefixed with `'`.
pub fn guard_formula(cell: &str) -> String {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

/// Whether `c` must not reach a terminal raw: a control character other than newline
/// and tab (C0, DEL, C1: ESC starts the sequences that move the cursor or retitle the
/// window) or a Unicode bidirectional control (which reorders what is shown).
fn unsafe_on_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text for a terminal (stdout summary, stderr messages): every character of
/// [`unsafe_on_terminal`] is written as a visible `\u{…}` escape.
pub fn terminal_safe(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(unsafe_on_terminal) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_on_terminal(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// The path of a request target: absolute-form targets (`http://host/x`) lose scheme and
/// authority, then everything from the first `?` goes. No percent-decoding.
pub fn path_of(target: &[u8]) -> &[u8] {
    let mut t = target;
    // A scheme starts with a letter: origin-form targets (`/...`) skip the search.
    let absolute = t.first().is_some_and(|c| c.is_ascii_alphabetic());
    if let Some(p) = absolute.then(|| memchr::memmem::find(t, b"://")).flatten() {
        let scheme = &t[..p];
        if !scheme.is_empty()
            && scheme[0].is_ascii_alphabetic()
            && scheme
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
        {
            let after = &t[p + 3..];
            let auth_end = after
                .iter()
                .position(|&c| c == b'/' || c == b'?' || c == b'#')
                .unwrap_or(after.len());
            t = &after[auth_end..];
        }
    }
    match memchr::memchr(b'?', t) {
        Some(q) => &t[..q],
        None => t,
    }
}

/// A size in bytes for people: `512 B`, `4.0 KiB`, `1.5 GiB` (powers of 1024).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_text_loses_escapes_and_bidi_controls() {
        assert_eq!(terminal_safe("a.log\n\tok"), "a.log\n\tok");
        assert_eq!(
            terminal_safe("x\u{1b}[2Jy\u{202e}gol.exe\r\u{7f}\u{9b}"),
            "x\\u{1b}[2Jy\\u{202e}gol.exe\\u{d}\\u{7f}\\u{9b}"
        );
        assert_eq!(terminal_safe("\u{2066}\u{200f}"), "\\u{2066}\\u{200f}");
        assert_eq!(guard_formula("+1+1"), "'+1+1");
        assert_eq!(guard_formula("@x"), "'@x");
        assert_eq!(guard_formula("\tx"), "'\tx");
        assert_eq!(guard_formula("198.51.100.7"), "198.51.100.7");
    }
}
