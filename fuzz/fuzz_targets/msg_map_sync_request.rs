//! MapSyncRequest as the root of a frame body. See `distsoc_fuzz::message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| distsoc_fuzz::msg_map_sync_request(data));
