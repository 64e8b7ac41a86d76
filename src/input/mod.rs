//! Input: the only code that opens a log. Paths → inputs ([`discover`]) → bytes
//! ([`decompress`]) → lines ([`framing`]) → requests ([`format`]) → a client key
//! ([`client`], [`orgs`]) and a post weight ([`post_weight`], [`rules`]), handed to a
//! sink by the one [`reader`]. [`second_read`] reads the files again for the reported
//! clients' evidence lines, top paths and user agents, and organisation members.

pub mod client;
pub mod decompress;
pub mod discover;
pub mod format;
pub mod framing;
pub mod gzip_index;
pub mod orgs;
pub mod post_weight;
pub mod progress;
pub mod reader;
pub mod recording;
pub mod rules;
pub mod second_read;
pub mod spec;
