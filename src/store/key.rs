//! Client keys on disk: one codec for the nightly state and the partials.
//!
//! A key is bytes. On disk it is its text as the reports write it (UTF-8 as is, other
//! bytes as `\xhh`) and, only when that text is not the key itself (the key is not
//! UTF-8, and `\xhh` is ambiguous), its exact bytes beside it: the partials' `client`
//! and `client_raw` columns, the state's `"key"` (text) or `{"hex": …}` (exact bytes).

use crate::engine::text::display_key;

/// `key` as stored: its text, and its exact bytes when the text is not the key.
pub fn encode(key: &[u8]) -> (String, Option<&[u8]>) {
    let raw = std::str::from_utf8(key).is_err().then_some(key);
    (display_key(key), raw)
}

/// The key stored as `text` and, when given, its exact bytes (which win).
pub fn decode<'a>(text: &'a str, raw: Option<&'a [u8]>) -> &'a [u8] {
    raw.unwrap_or(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for key in [&b"198.51.100.7"[..], b"caf\xc3\xa9", b"\xff-not-utf8", b""] {
            let (text, raw) = encode(key);
            assert_eq!(decode(&text, raw), key);
        }
        assert_eq!(
            encode(b"\xffa"),
            ("\\xffa".to_string(), Some(&b"\xffa"[..]))
        );
        assert_eq!(encode(b"a").1, None);
    }
}
