#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| listconranker_formats::harness::tokenizer(data));
