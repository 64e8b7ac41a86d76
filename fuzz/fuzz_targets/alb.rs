//! `alb` lines → requests → client keys and weights.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scrapemeter::input::format::LineFormat;
use scrapemeter_fuzz::{downstream, lines};

fuzz_target!(|data: &[u8]| {
    let mut format: Box<dyn LineFormat> =
        Box::new(scrapemeter::input::format::alb::Alb::new(&downstream().fields));
    lines(format.as_mut(), data);
});
