//! `json` lines → requests → client keys and weights, with the default field paths
//! and with paths a settings file could give.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::format::json::Json;
use scrapemeter::input::format::JsonFields;
use scrapemeter_fuzz::{downstream, lines};

fuzz_target!(|data: &[u8]| {
    let fields = &downstream().fields;
    let mut default = Json::new(&JsonFields::default(), fields);
    lines(&mut default, data);
    let custom = JsonFields {
        time: Some("t[1].x".into()),
        client: Some("c".into()),
        request: Some("r".into()),
        status: Some("s.code".into()),
        user: Some("u".into()),
        user_agent: Some("h.ua".into()),
        host: Some("host".into()),
        ..JsonFields::default()
    };
    let mut custom = Json::new(&custom, fields);
    lines(&mut custom, data);
});
