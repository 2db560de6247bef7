//! The query-string grammars of the Key Protect list API as the service reads them — the
//! `search` expression, `sort` and `filter` (with its time values): arbitrary text must be
//! refused with an error, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strongroom_service::{parse_filter, parse_sort, Search};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Search::parse(text);
    let _ = parse_sort(text);
    // Time values: digits as milliseconds, anything else unreadable (the real reader,
    // RFC 3339, has its own tests; here the grammar around it is the target).
    let _ = parse_filter(text, &|v| v.parse::<i64>().ok().map(strongroom_model::UnixMillis));
});
