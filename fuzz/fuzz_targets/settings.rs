//! Settings files (TOML) resolved into a `Config`, as `--settings` would; the files
//! a settings file names (rules, orgs) are not read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::config::{Config, Overrides, SettingsFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(mut file) = toml::from_str::<SettingsFile>(text) else {
        return;
    };
    file.rules = None;
    file.orgs = None;
    if let Ok(cfg) = Config::resolve(vec!["-".into()], "out".into(), Overrides::default(), file) {
        let formats = cfg.read.format.candidates(&cfg.read.fields, &cfg.read.json);
        let line: &[u8] =
            br#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a HTTP/1.1" 200 5 "-" "x""#;
        for f in &formats {
            let _ = f.parse(line);
        }
        let _ = cfg.read.in_range(0);
    }
});
