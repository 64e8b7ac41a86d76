//! The engine: pure computation on requests already read. No file system, no flags,
//! no clock, no `Config`: what it needs comes in as arguments ([`bill::Policy`]).

pub mod aggregate;
pub mod bill;
pub mod breakdown;
pub mod damages;
pub mod evidence;
pub mod groups;
pub mod late;
pub mod limits;
pub mod members;
pub mod rate_profile;
pub mod text;
pub mod time;
pub mod tops;
pub mod traffic;
pub mod window;

/// A setting's value that does not parse (a rate, a duration, a mode…); the message
/// names the value and says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl From<String> for InvalidValue {
    fn from(s: String) -> Self {
        InvalidValue(s)
    }
}

impl From<&str> for InvalidValue {
    fn from(s: &str) -> Self {
        InvalidValue(s.to_string())
    }
}
