//! Post weight: how many posts a request delivered.
//!
//! The default rule of SPEC.md: 1 for a 2xx or 304 response whose path is not a
//! static asset, else 0. A rules file ([`crate::input::rules`]) replaces it.

use crate::engine::text::path_of;
use crate::input::format::Request;

/// Static asset suffixes that never count as posts (compared case-insensitively).
pub const STATIC_EXTENSIONS: [&str; 17] = [
    ".css", ".js", ".mjs", ".map", ".png", ".jpg", ".jpeg", ".gif", ".ico", ".svg", ".webp",
    ".avif", ".woff", ".woff2", ".ttf", ".otf", ".eot",
];

pub fn is_static(path: &[u8]) -> bool {
    // Every listed suffix is a dot and a dot-free extension, so the path ends in one
    // exactly when what follows its last dot is one.
    let Some(dot) = memchr::memrchr(b'.', path) else {
        return false;
    };
    let ext = &path[dot..];
    // Compared as one lower-cased word against the list's words: the loop of 17
    // case-insensitive compares was 2.6% of the parse thread (one bench file).
    ext.len() <= 6 && STATIC_WORDS.contains(&lower_word(ext))
}

/// Up to 7 bytes, lower-cased, with their length in the last byte, as one word (so
/// `.css` and `.css\0` differ).
const fn lower_word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let mut i = 0;
    while i < b.len() && i < 7 {
        w[i] = b[i].to_ascii_lowercase();
        i += 1;
    }
    w[7] = b.len() as u8;
    u64::from_le_bytes(w)
}

/// [`STATIC_EXTENSIONS`] as [`lower_word`]s.
const STATIC_WORDS: [u64; STATIC_EXTENSIONS.len()] = {
    let mut words = [0u64; STATIC_EXTENSIONS.len()];
    let mut i = 0;
    while i < words.len() {
        words[i] = lower_word(STATIC_EXTENSIONS[i].as_bytes());
        i += 1;
    }
    words
};

/// 200–299 or 304.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status) || status == 304
}

/// Decides the post weight of every request, as configured.
#[derive(Debug, Clone, Default)]
pub enum Weigher {
    /// The default rule of SPEC.md.
    #[default]
    Default,
    /// A rules file: the first matching rule gives the weight.
    Rules(std::sync::Arc<crate::input::rules::RuleSet>),
}

impl Weigher {
    #[inline]
    pub fn weight(&self, req: &Request<'_>) -> u64 {
        match self {
            Weigher::Default => default_weight(req),
            Weigher::Rules(rules) => rules.weight(req),
        }
    }
}

/// The default rule.
pub fn default_weight(req: &Request<'_>) -> u64 {
    match &req.target {
        Some(target) if is_success(req.status) && !is_static(path_of(target)) => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[test]
    fn paths() {
        assert_eq!(path_of(b"/a/b?c=d"), b"/a/b");
        assert_eq!(path_of(b"http://host:80/x.css?y"), b"/x.css");
        assert_eq!(path_of(b"https://host"), b"");
        assert_eq!(path_of(b"/r?u=http://x/y.css"), b"/r");
        assert_eq!(path_of(b"dolore/do/labore"), b"dolore/do/labore");
    }

    #[test]
    fn static_suffixes_match_a_plain_ends_with() {
        for p in [
            "/a.css",
            "/a.CsS",
            "/x.min.js",
            "/.js",
            "/a.js/",
            "/a.jsx",
            "/f.woff2",
            "/f.woff",
            "/f.woff3",
            "/a.b.c",
            "/",
            "",
            "/post.json",
            "/a.webp",
            "/a.avif",
            "/a.mjs.map",
            "/a.css\0",
            "/a.\0css",
            "/a.CSS",
            "/a.wOfF2",
            "/a.woff22",
        ] {
            let slow = STATIC_EXTENSIONS
                .iter()
                .any(|e| p.len() >= e.len() && p[p.len() - e.len()..].eq_ignore_ascii_case(e));
            assert_eq!(is_static(p.as_bytes()), slow, "{p}");
        }
    }

    #[test]
    fn statics() {
        assert!(is_static(b"/app.JS"));
        assert!(is_static(b"/f.woff2"));
        assert!(!is_static(b"/x%2Ecss"));
        assert!(!is_static(b"/css"));
        assert!(!is_static(b"/post/123"));
    }

    #[test]
    fn default_rule() {
        let mut r = Request {
            target: Some(Cow::Borrowed(b"/post/1".as_slice())),
            method: Some(Cow::Borrowed(b"DELETE".as_slice())),
            status: 200,
            ..Default::default()
        };
        assert_eq!(default_weight(&r), 1);
        r.status = 304;
        assert_eq!(default_weight(&r), 1);
        r.status = 301;
        assert_eq!(default_weight(&r), 0);
        r.status = 299;
        r.target = Some(Cow::Borrowed(b"/a.png?v=1".as_slice()));
        assert_eq!(default_weight(&r), 0);
        r.target = None;
        assert_eq!(default_weight(&r), 0);
    }
}
