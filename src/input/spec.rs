//! What the reader needs to know to turn a log line into a weighed request of a client.

use crate::engine::bill::Identity;
use crate::engine::groups::GroupBy;
use crate::engine::text::{display_key, guard_formula};
use crate::engine::time::Micros;
use crate::input::client::{key_into, ClientKind, Keyed, Keyer};
use crate::input::format::{FieldSet, FormatChoice, JsonFields, Request};
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
    /// `scan --also-by`: what the first pass groups requests by besides their client
    /// (possible evasion leads, [`crate::engine::groups`]); empty without it.
    pub also_by: Vec<GroupBy>,
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

    /// The groupings of `also_by` the first pass must collect: all but a subnet
    /// grouping of `ip` clients without organisations, whose keys are the addresses
    /// themselves, so that its groups are derived from the clients after the pass
    /// ([`group_of_client_key`]) at no cost to the pass.
    pub fn collected_groups(&self) -> Vec<GroupBy> {
        self.also_by
            .iter()
            .copied()
            .filter(|&by| !self.derives(by))
            .collect()
    }

    /// Whether the groups of `by` are derived from the client keys after the pass.
    pub fn derives(&self, by: GroupBy) -> bool {
        matches!(by, GroupBy::Subnet { .. })
            && self.client == ClientKind::Ip
            && self.keyer.orgs.is_none()
    }

    /// Whether client `key` is an exempt organisation (its requests may be any number:
    /// they are left out of `--also-by` groups).
    #[inline]
    pub fn is_exempt(&self, key: &[u8]) -> bool {
        self.keyer.orgs.as_deref().is_some_and(|o| {
            o.exempt.contains(&true) && o.by_name(key).is_some_and(|id| o.is_exempt(id))
        })
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

/// Writes the group of `req` under `by` into `buf` (cleared first), keyed as
/// `--client subnet` or `--client ua` would key it; false when the request has none
/// (no address or user agent, `-`, or a user agent with no closing quote).
#[inline]
pub fn group_key_into(by: GroupBy, req: &Request<'_>, buf: &mut Vec<u8>) -> bool {
    let kind = match by {
        GroupBy::Subnet {
            ipv4_prefix,
            ipv6_prefix,
        } => ClientKind::Subnet {
            ipv4_prefix,
            ipv6_prefix,
        },
        GroupBy::Ua => ClientKind::Ua,
    };
    matches!(key_into(&kind, req, buf), Keyed::Client)
}

/// Writes the group of client `key` under `by` into `buf`, for a grouping derived
/// from `ip` client keys ([`ReadSpec::derives`]): the key is the request's address in
/// canonical form, so its network is the one [`group_key_into`] gives the request.
pub fn group_of_client_key(by: GroupBy, key: &[u8], buf: &mut Vec<u8>) -> bool {
    let req = Request {
        remote: std::borrow::Cow::Borrowed(key),
        ..Default::default()
    };
    group_key_into(by, &req, buf)
}
