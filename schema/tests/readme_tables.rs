#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `schema/README.md` §2's message-code table is not maintained by hand: it
//! must equal the rendering of `distsoc_schema::limits::MESSAGE_CODES` (the
//! `code*` constants of `schema/wire.capnp` and their annotations). On a
//! mismatch this test prints the table to paste between the markers.

use distsoc_schema::limits::{message_code, MessageKind, MESSAGE_CODES};
use std::path::PathBuf;

const BEGIN: &str = "<!-- message-codes:begin";
const END: &str = "<!-- message-codes:end -->";

/// A byte count as the README writes it: `4 KiB`, `16 MiB`, `5 MiB + 64 KiB`.
fn size(bytes: u32) -> String {
    const KIB: u32 = 1024;
    const MIB: u32 = 1024 * 1024;
    match (bytes / MIB, bytes % MIB) {
        (0, rest) => format!("{} KiB", rest / KIB),
        (m, 0) => format!("{m} MiB"),
        (m, rest) => format!("{m} MiB + {} KiB", rest / KIB),
    }
}

fn render() -> String {
    let mut s =
        String::from("| code | message | kind | answered by | cap |\n|---|---|---|---|---|\n");
    for c in MESSAGE_CODES {
        let message = if c.root == c.name {
            c.name.to_owned()
        } else {
            format!("{} (a {})", c.name, c.root)
        };
        let answered = match (c.kind, c.response.and_then(message_code)) {
            (MessageKind::Request, Some(r)) => r.name,
            _ => "—",
        };
        s.push_str(&format!(
            "| 0x{:02X} | {message} | {} | {answered} | {} |\n",
            c.code,
            c.kind.name(),
            size(c.frame_cap)
        ));
    }
    s
}

#[test]
fn readme_code_table_is_the_generated_one() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema/README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("begin marker in schema/README.md");
    let body_start = start + readme[start..].find("-->\n").unwrap() + 4;
    let end = readme.find(END).expect("end marker in schema/README.md");
    let table = &readme[body_start..end];
    let want = render();
    assert!(
        table == want,
        "schema/README.md §2 message-code table differs from the schema; replace it with:\n{want}"
    );
}

#[test]
fn sizes_render_like_the_readme() {
    assert_eq!(size(4096), "4 KiB");
    assert_eq!(size(16 * 1024 * 1024), "16 MiB");
    assert_eq!(size(5 * 1024 * 1024 + 64 * 1024), "5 MiB + 64 KiB");
}
