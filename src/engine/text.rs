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
