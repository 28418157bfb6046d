//! What a target must know or hold so that no case stays `SKIPPED` for
//! lack of it (`distsoc-conformance fixtures --role node|anchor`): the
//! fixture authors the content cases sign with
//! ([`super::cases::post::fixture_ids`], the one source of these ids), the
//! content a node should serve, and the settings the rate-limit and TTL
//! cases need; with the commands that give them to our own node and anchor.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::cases::post::fixture_ids;
use super::model::Role;

/// One identity the suite signs content with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixtureIdentity {
    /// `author-0` … `author-3`, `mixed-order`.
    pub name: String,
    /// The posting id (Ed25519 public key), 64 hex digits.
    pub posting_id: String,
    /// How the key is derived (so another implementation can check it).
    pub derivation: String,
}

/// Everything `fixtures` prints for one role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixtures {
    /// `node` or `anchor`.
    pub role: String,
    /// Whether the target must follow (accept pushes from) the identities.
    pub must_follow: bool,
    /// The identities.
    pub identities: Vec<FixtureIdentity>,
    /// What else the target should hold or be set to, one line each.
    pub requirements: Vec<String>,
    /// Shell commands that prepare our own implementation (`distsoc-node`
    /// or `distsoc-anchor`) for the run.
    pub commands: Vec<String>,
}

/// The fixtures for a target of role `role`.
#[must_use]
pub fn for_role(role: Role) -> Fixtures {
    let ids = fixture_ids();
    let identities: Vec<FixtureIdentity> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            let (name, derivation) = if n + 1 == ids.len() {
                (
                    "mixed-order".to_string(),
                    "secret scalar a = SHA-512(\"distsoc-conformance mixed-order key\") mod L; \
                     public key [a]B + T, T = EIGHT_TORSION[1] (curve25519-dalek)"
                        .to_string(),
                )
            } else {
                (
                    format!("author-{n}"),
                    format!(
                        "Ed25519 key of seed BLAKE3(\"distsoc-conformance fixture author\" || 0x{n:02x}) \
                         (34 ASCII bytes and one byte, 35 bytes hashed)"
                    ),
                )
            };
            FixtureIdentity {
                name,
                posting_id: hex::encode(id),
                derivation,
            }
        })
        .collect();
    match role {
        Role::Node | Role::Any => {
            let mut commands: Vec<String> = ids
                .iter()
                .map(|id| format!("distsoc-node follow --offline {}", hex::encode(id)))
                .collect();
            commands.push("printf 'fixture blob bytes' > fixture.txt".into());
            commands.push(
                "distsoc-node post 'conformance fixture: public post with an attachment' --attach fixture.txt"
                    .into(),
            );
            commands.push(format!(
                "distsoc-node post 'conformance fixture: encrypted post' --to {}",
                hex::encode(ids[3])
            ));
            Fixtures {
                role: "node".into(),
                must_follow: true,
                identities,
                requirements: vec![
                    "follow every identity above (accept PushPost from them): else the positive POST, SIG, SYNC and NODE cases are SKIPPED".into(),
                    "serve a public post of its own NodeId with an attachment (NODE-4-006, SYNC-7-006)".into(),
                    "serve an encrypted post for author-3 (NODE-5-023)".into(),
                    "SYNC-7-501 stays SKIPPED on a target that does not accept encrypted posts by push (a user node: recipients pull them from their author)".into(),
                ],
                commands,
            }
        }
        Role::Anchor => Fixtures {
            role: "anchor".into(),
            must_follow: false,
            identities,
            requirements: vec![
                "no identity to follow: an anchor accepts PushPost from any author".into(),
                "announce rateLimitPerSecond <= 200 (the RL cases; else SKIPPED): rate_limit_per_second in DATA_DIR/anchor.toml (default 50)".into(),
                "announce mailboxTtlMs <= 5000 (the MBX TTL cases; else SKIPPED): mailbox_ttl_secs = 2 in DATA_DIR/anchor.toml of a test anchor (as our tests)".into(),
            ],
            // Settings, not commands: see `requirements`.
            commands: Vec::new(),
        },
    }
}

/// The fixtures as text for a person: the ids (one per line, pasteable),
/// what else the target needs and the commands for our implementation.
#[must_use]
pub fn text(f: &Fixtures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Fixture identities the suite signs content with (role {}){}",
        f.role,
        if f.must_follow {
            ": the target must follow them"
        } else {
            ""
        }
    );
    for i in &f.identities {
        let _ = writeln!(out, "{}  {}", i.posting_id, i.name);
    }
    let _ = writeln!(out, "\n# How they are derived");
    for i in &f.identities {
        let _ = writeln!(out, "# {}: {}", i.name, i.derivation);
    }
    let _ = writeln!(out, "\n# What the target needs");
    for r in &f.requirements {
        let _ = writeln!(out, "# - {r}");
    }
    let _ = writeln!(
        out,
        "\n# For our {} (add --data-dir DIR as needed):",
        if f.role == "node" {
            "node, distsoc-node"
        } else {
            "anchor, distsoc-anchor"
        }
    );
    if f.commands.is_empty() {
        let _ = writeln!(
            out,
            "# nothing to run: set the anchor.toml keys named above"
        );
    }
    for c in &f.commands {
        let _ = writeln!(out, "{c}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// The README's table and formula are checked against the code: the
    /// ids are recomputed from the formula as written there.
    #[test]
    fn readme_table_matches_the_code() {
        let readme = include_str!("../../README.md");
        let f = for_role(Role::Node);
        assert_eq!(f.identities.len(), 5);
        for (n, i) in f.identities.iter().enumerate().take(4) {
            let mut input = b"distsoc-conformance fixture author".to_vec();
            assert_eq!(input.len(), 34);
            input.push(n as u8);
            let seed = *blake3::hash(&input).as_bytes();
            let public = distsoc_protocol::sign::SigningKey::from_seed(&seed).public();
            assert_eq!(i.posting_id, hex::encode(public), "{}", i.name);
        }
        for i in &f.identities {
            assert!(
                readme.contains(&format!("`{}`", i.posting_id)),
                "README.md lacks {} {}",
                i.name,
                i.posting_id
            );
        }
        let t = text(&f);
        assert!(t.contains(&format!(
            "distsoc-node follow --offline {}",
            f.identities[4].posting_id
        )));
        assert!(!for_role(Role::Anchor).must_follow);
    }
}
