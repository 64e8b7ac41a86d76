//! Shared driving code for the fuzz targets: a parsed request is carried through
//! everything a scan does with it (client keys of every kind, the default rule, a
//! rules file, time printing), so that a panic anywhere downstream of a parser is found
//! by the parser's target.

use scrapemeter::input::client::{ClientKind, Keyer};
use scrapemeter::input::format::{FieldSet, LineFormat, Request};
use scrapemeter::input::rules::RuleSet;
use scrapemeter::engine::time::format_rfc3339;
use scrapemeter::input::post_weight::default_weight;
use std::sync::OnceLock;

/// Named fields a run may ask the formats for (the `field:NAME` key, rules).
pub const FIELD_NAMES: &[&str] = &[
    "http_x_api_key",
    "upstream_http_x_post_count",
    "client_port",
    "client_ip",
    "request.headers.Authorization[0]",
    "x-edge-request-id",
    "user_agent",
];

const RULES: &str = r#"
[[rule]]
name = "timeline"
method = ["GET", "post"]
path = "/api/*/timeline/**"
host = "api.example.com"
status = ["2xx", "304"]
posts = { query = "count", default = 20, max = 200 }

[[rule]]
name = "status"
path_regex = '^/[^/]+/status/\d+$'
posts = 1

[[rule]]
name = "app"
path = "/graphql/**"
posts = { field = "upstream_http_x_post_count", default = 0 }

[[rule]]
name = "rest"
status = ["4xx", "500"]
posts = 0
"#;

/// Everything a request goes through after its format.
pub struct Downstream {
    pub fields: FieldSet,
    keyers: Vec<Keyer>,
    rules: RuleSet,
}

pub fn downstream() -> &'static Downstream {
    static D: OnceLock<Downstream> = OnceLock::new();
    D.get_or_init(|| {
        let mut fields = FieldSet::default();
        for n in FIELD_NAMES {
            fields.add(n);
        }
        let kinds = [
            ClientKind::Ip,
            ClientKind::Subnet {
                ipv4_prefix: 24,
                ipv6_prefix: 64,
            },
            ClientKind::Subnet {
                ipv4_prefix: 0,
                ipv6_prefix: 128,
            },
            ClientKind::Subnet {
                ipv4_prefix: 32,
                ipv6_prefix: 0,
            },
            ClientKind::User,
            ClientKind::Ua,
            ClientKind::Field {
                name: "http_x_api_key".into(),
            },
        ];
        let keyers = kinds
            .into_iter()
            .map(|k| Keyer::new(k, &mut fields))
            .collect();
        let rules = RuleSet::parse(RULES, "fuzz", &mut fields).expect("the fuzz rules compile");
        Downstream {
            fields,
            keyers,
            rules,
        }
    })
}

impl Downstream {
    /// Keys, weighs and prints one parsed request.
    pub fn request(&self, req: &Request<'_>) {
        let mut buf = Vec::new();
        for k in &self.keyers {
            let _ = k.key_into(req, &mut buf);
            let _ = scrapemeter::engine::text::display_key(&buf);
        }
        let _ = default_weight(req);
        let _ = self.rules.weight(req);
        let _ = format_rfc3339(req.time);
    }
}

/// Feeds `data` to `format` line by line, as a scan does: `#` lines are comments
/// (CloudFront learns its columns from them), the others are parsed and every
/// request carried downstream.
pub fn lines(format: &mut dyn LineFormat, data: &[u8]) {
    let d = downstream();
    for line in data.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'#') {
            format.comment(line);
            continue;
        }
        if let Ok(req) = format.parse(line) {
            d.request(&req);
        }
    }
}
