//! The engine: pure computation on requests already read. No file system, no flags,
//! no clock, no `Config`: what it needs comes in as arguments ([`bill::Policy`]).

pub mod aggregate;
pub mod bill;
pub mod damages;
pub mod evidence;
pub mod members;
pub mod rate_profile;
pub mod text;
pub mod time;
pub mod tops;
pub mod window;
