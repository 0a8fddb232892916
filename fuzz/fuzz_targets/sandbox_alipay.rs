#![no_main]
// Generated shape: one line per target, the code is in crates/fuzz.
libfuzzer_sys::fuzz_target!(|data: &[u8]| cashdesk_fuzz::fuzz("sandbox_alipay", data));
