//! The settings that change results, as one typed value (serde, compared and digested
//! as data, never through `Debug`): what the nightly state records and refuses to
//! continue under other values, and what the partials digest so that `reduce` refuses
//! mixed settings.
//!
//! [`ReadSettings`] is everything that changes which requests count and how much (the
//! partials' digest: their rows do not depend on the policy); [`Fingerprint`] adds the
//! billing [`PolicySettings`] (the nightly state's windows do).

use crate::engine::bill::Policy;
use crate::engine::time::{format_duration, Micros};
use crate::input::client::ClientKind;
use crate::input::format::JsonFields;
use crate::input::post_weight::Weigher;
use crate::input::spec::ReadSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Version of the partials layout; a reduce refuses any other.
pub const PARTIALS_VERSION: &str = "1";

/// An organisation as the settings digest sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgEntry {
    pub name: String,
    pub exempt: bool,
}

/// Everything that changes the rows of the aggregate (which requests count, for which
/// client, with how many posts), serialised canonically (compact JSON, fields in this
/// order) and digested with SHA-256. File paths are left out: the same rules file at
/// two paths on two machines gives the same digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadSettings {
    /// [`PARTIALS_VERSION`].
    pub partials: String,
    /// `--format` as resolved: `auto`, `combined`, …, or `nginx:<log_format>`.
    pub format: String,
    /// The settings file's `[json]` field paths (they matter for `json` and `auto`).
    pub json: JsonFields,
    /// `ip`, `subnet`, `user`, `ua` or `field:NAME`.
    pub client: String,
    pub subnet_ipv4_prefix: Option<u8>,
    pub subnet_ipv6_prefix: Option<u8>,
    /// SHA-256 of the rules file's bytes; null for the default rule.
    pub rules_sha256: Option<String>,
    /// SHA-256 of the organisations file's bytes; null without one.
    pub orgs_sha256: Option<String>,
    /// Every organisation, in file order, with its exemption.
    pub orgs: Vec<OrgEntry>,
    /// `--since` / `--until` in UTC epoch microseconds.
    pub since: Option<Micros>,
    pub until: Option<Micros>,
}

impl ReadSettings {
    /// The settings of `spec`.
    pub fn of(spec: &ReadSpec) -> ReadSettings {
        let (client, v4, v6) = match &spec.client {
            ClientKind::Subnet {
                ipv4_prefix,
                ipv6_prefix,
            } => ("subnet".to_string(), Some(*ipv4_prefix), Some(*ipv6_prefix)),
            ClientKind::Field { name } => (format!("field:{name}"), None, None),
            other => (other.name().to_string(), None, None),
        };
        let orgs = spec.keyer.orgs.as_deref();
        ReadSettings {
            partials: PARTIALS_VERSION.into(),
            format: spec.format.name(),
            json: spec.json.clone(),
            client,
            subnet_ipv4_prefix: v4,
            subnet_ipv6_prefix: v6,
            rules_sha256: match &spec.weigher {
                Weigher::Default => None,
                Weigher::Rules(r) => Some(r.sha256.clone()),
            },
            orgs_sha256: orgs.map(|o| o.sha256.clone()),
            orgs: orgs
                .map(|o| {
                    o.names
                        .iter()
                        .zip(&o.exempt)
                        .map(|(n, &e)| OrgEntry {
                            name: n.clone(),
                            exempt: e,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            since: spec.since,
            until: spec.until,
        }
    }

    /// The canonical serialisation and its SHA-256 in hex.
    pub fn canonical(&self) -> (String, String) {
        let text = serde_json::to_string(self).expect("settings serialise");
        let digest = hex::encode(Sha256::digest(text.as_bytes()));
        (text, digest)
    }
}

/// The billing policy, as saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySettings {
    pub threshold: u64,
    /// The window as written (`24h`, `1h30m`: whole seconds, so exact).
    pub window: String,
    /// USD per `per` posts, as a decimal string (exact).
    pub rate: String,
    pub per: u64,
    pub rounding: String,
    pub mode: String,
}

impl PolicySettings {
    pub fn of(policy: &Policy) -> PolicySettings {
        PolicySettings {
            threshold: policy.threshold,
            window: format_duration(policy.window),
            rate: policy.rate.to_string(),
            per: policy.per,
            rounding: policy.rounding.to_string(),
            mode: policy.mode.to_string(),
        }
    }
}

/// Everything that changes a run's billed windows: how requests are read and how they
/// are billed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub read: ReadSettings,
    pub policy: PolicySettings,
}

impl Fingerprint {
    pub fn of(read: &ReadSpec, policy: &Policy) -> Fingerprint {
        Fingerprint {
            read: ReadSettings::of(read),
            policy: PolicySettings::of(policy),
        }
    }

    /// Every setting by dotted name (`read.format`, `policy.threshold`, …) with its
    /// value as text (strings bare, anything else as JSON): for saying which differ.
    pub fn by_name(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        flatten(
            "",
            &serde_json::to_value(self).expect("settings serialise"),
            &mut out,
        );
        out
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        serde_json::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides, SettingsFile};

    fn cfg(flags: Overrides) -> Config {
        Config::resolve(vec!["x".into()], "o".into(), flags, SettingsFile::default()).unwrap()
    }

    #[test]
    fn a_fingerprint_round_trips_and_names_what_differs() {
        let a = cfg(Overrides::default());
        let fa = Fingerprint::of(&a.read, &a.policy);
        let back: Fingerprint = serde_json::from_str(&serde_json::to_string(&fa).unwrap()).unwrap();
        assert_eq!(back, fa);
        let b = cfg(Overrides {
            threshold: Some(5),
            client: Some("subnet".into()),
            ..Default::default()
        });
        let fb = Fingerprint::of(&b.read, &b.policy);
        let (na, nb) = (fa.by_name(), fb.by_name());
        let differ: Vec<&String> = na.keys().filter(|k| na.get(*k) != nb.get(*k)).collect();
        assert_eq!(
            differ,
            [
                "policy.threshold",
                "read.client",
                "read.subnet_ipv4_prefix",
                "read.subnet_ipv6_prefix"
            ]
        );
    }

    #[test]
    fn the_partials_digest_is_pinned() {
        // Partials written by earlier versions must keep their digest: the canonical
        // text of the defaults is fixed.
        let c = cfg(Overrides::default());
        let (text, _) = ReadSettings::of(&c.read).canonical();
        assert_eq!(
            text,
            r#"{"partials":"1","format":"auto","json":{"time":null,"client":null,"method":null,"uri":null,"request":null,"status":null,"user":null,"user_agent":null,"host":null},"client":"ip","subnet_ipv4_prefix":null,"subnet_ipv6_prefix":null,"rules_sha256":null,"orgs_sha256":null,"orgs":[],"since":null,"until":null}"#
        );
    }
}
