//! The memory goal of DESIGN.md decision 12: a 350,000-entry map in ≤ 4 MB,
//! measured on the heap with dhat's counting allocator (not estimated).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mesh_fixture;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn a_350k_entry_map_fits_in_4_mb() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let before = dhat::HeapStats::get().curr_bytes as isize;
    let mut mesh = mesh_fixture::full_map();
    let heap = dhat::HeapStats::get().curr_bytes as isize - before;
    let stats = mesh.map_stats();
    println!("map: {stats:?}, heap {heap} bytes");
    assert!(
        (330_000..=370_000).contains(&stats.hop3),
        "hop 3 has {} unique entries",
        stats.hop3
    );
    assert!(stats.hop2 >= 5_000, "hop 2 has {}", stats.hop2);
    assert!(heap <= 4_000_000, "the whole mesh state takes {heap} bytes");
    // The estimate the CLI prints is within 25 % of the real heap.
    let est = stats.bytes as isize;
    assert!(
        (est - heap).abs() * 4 <= heap,
        "estimate {est} vs heap {heap}"
    );
}
