//! Arbitrary bytes as the content of one stream direction: the frame decoder
//! (one-shot and incremental) and frame validation. See `distsoc_fuzz::frame_decoder`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| distsoc_fuzz::frame_decoder(data));
