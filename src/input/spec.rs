//! What the reader needs to know to turn a log line into a weighed request of a client.

use crate::engine::bill::Identity;
use crate::engine::text::{display_key, guard_formula};
use crate::engine::time::Micros;
use crate::input::client::{ClientKind, Keyer};
use crate::input::format::{FieldSet, FormatChoice, JsonFields};
use crate::input::post_weight::Weigher;

/// How to read: format, client key, post weight and time range, validated.
#[derive(Debug, Clone)]
pub struct ReadSpec {
    pub format: FormatChoice,
    /// Field paths for JSON lines (the settings file's `[json]` table).
    pub json: JsonFields,
    pub client: ClientKind,
    /// Named fields the formats must extract (filled while resolving).
    pub fields: FieldSet,
    /// Request → client key (with organisations, when given).
    pub keyer: Keyer,
    /// Request → post weight (the default rule, or a rules file).
    pub weigher: Weigher,
    /// Requests outside `[since, until)` are dropped before anything else.
    pub since: Option<Micros>,
    pub until: Option<Micros>,
    /// Requests before this time are late (the previous run's watermark): counted per
    /// file, never merged. Set from the nightly state at run time, not from flags.
    pub late_before: Option<Micros>,
    /// The memory budget the first pass's aggregates keep to (`--memory-limit`): set
    /// at run time by `scan`, not from flags.
    pub memory: Option<std::sync::Arc<crate::engine::aggregate::Budget>>,
}

impl ReadSpec {
    /// Whether a request time is inside `[since, until)`.
    #[inline]
    pub fn in_range(&self, t: Micros) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// How the reports name client `key`, and whether it is an exempt organisation.
    pub fn identify(&self, key: &[u8]) -> Identity {
        let orgs = self.keyer.orgs.as_deref();
        let org = orgs.and_then(|o| o.by_name(key));
        let name = display_key(key);
        // Organisation names are written as they are; every other key comes from log
        // text and is guarded, whatever the key kind: an `ip` key whose field held no
        // IP address (a JSON `remote_addr`, a combined host field) is log content too.
        // (A real address or network never starts with a guarded character.)
        let cell = if org.is_none() {
            guard_formula(&name)
        } else {
            name.clone()
        };
        Identity {
            name,
            cell,
            exempt: org.is_some_and(|id| orgs.is_some_and(|o| o.is_exempt(id))),
        }
    }
}
