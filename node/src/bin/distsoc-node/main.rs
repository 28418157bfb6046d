//! `distsoc-node`: run a distsoc user node and act on it.
//!
//! Every command works on the node's data directory, whether or not a `run`
//! process is up (the store allows a second writer). `connect` and `sync` open
//! a short-lived QUIC endpoint of their own, and so do the `dm` commands
//! (the anchor knows the node by that endpoint's key, its NodeId).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use distsoc_net::operator::LogFormat;
use distsoc_node::bundle;
use distsoc_node::compose::VisibilityIntent;
use distsoc_node::config::{default_data_dir, Config};
use distsoc_node::dm::DmClient;
use distsoc_node::mesh;
use distsoc_node::node::{Node, Revocation};
use distsoc_protocol::ids::{ConnectString, NodeId, PostingId};
use serde_json::json;

mod anchors;
mod identity;
mod social;
use anchors::{anchor, AnchorCommand, AnchorRef};
use identity::{fmt_utc, persona, posts, PersonaCommand};

/// A distsoc user node: post, follow, circles, encrypted posts, pull sync.
#[derive(Debug, Parser)]
#[command(name = "distsoc-node", version, about, long_about = None)]
struct Cli {
    /// Data directory (key, config.toml, store). Default:
    /// $DISTSOC_DATA_DIR, else $XDG_DATA_HOME/distsoc, else ~/.local/share/distsoc.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Print results as JSON (for scripts).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node: network key (0600), config.toml with every default, store.
    Init {
        /// UDP address to listen on (written to config.toml).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Serve peers and sync periodically until Ctrl-C or SIGTERM.
    Run {
        /// Override the configured listen address.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Log lines on stderr: `text` (colours only on a terminal) or
        /// `json`, one object per line.
        #[arg(long, value_name = "FORMAT", default_value = "text")]
        log_format: LogFormat,
    },
    /// Print this node's NodeId.
    Id,
    /// Show or set the public profile.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Publish a post.
    Post {
        /// The text.
        text: String,
        /// Audience: `public` (default), `friends`, `circle:NAME`, or
        /// comma-separated posting ids.
        #[arg(long, default_value = "public")]
        to: String,
        /// Attach a file (at most 256 KiB; repeatable).
        #[arg(long)]
        attach: Vec<PathBuf>,
        /// Post as this persona (see `persona list`); default: the persona
        /// in use.
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// Personas: posting identities you post as, each its own author to
    /// everyone else. The first one, `default`, is this node's own key.
    #[command(subcommand)]
    Persona(PersonaCommand),
    /// The anchors this node checks in with (anchors.json).
    #[command(subcommand)]
    Anchor(AnchorCommand),
    /// Delete one of your posts: an author delete (a signed DeleteRecord).
    /// The post is removed here at once; peers that pull from this node and
    /// anchors (at the next sync) get the delete, and it is honoured
    /// whichever peer it reaches them through. Works for a stored post that
    /// can no longer be read.
    Delete {
        /// The post id (64 hex digits, as `feed --json` shows it).
        id: String,
    },
    /// Follow a posting id (private: never sent in gossip). When anchors or
    /// bootstrap peers are configured, the author is then looked up by id
    /// (as `lookup` does) and, when found, connected to and pulled from.
    Follow {
        /// Posting id (64 hex digits).
        id: PostingId,
        /// Only record the follow; do not look the author up.
        #[arg(long)]
        offline: bool,
        /// Follow as this persona (default: the persona in use). Follows
        /// belong to a persona: `feed --persona` shows each one's view.
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// Stop following a posting id (from every persona, or only `--as`).
    Unfollow {
        /// Posting id.
        id: PostingId,
        /// Stop following only as this persona.
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// List followed ids (with the persona that follows, when there are
    /// several personas).
    Following {
        /// Only this persona's follows.
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// Show the reverse-chronological feed of every persona; with several
    /// personas each item says whose follow brought it.
    Feed {
        /// Most posts to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only what this persona sees: its posts, posts by those it
        /// follows, and posts sealed to it.
        #[arg(long, value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// Manage circles (named recipient lists).
    #[command(subcommand)]
    Circle(CircleCommand),
    /// Audience: consented push of public posts.
    #[command(subcommand)]
    Audience(AudienceCommand),
    /// List known peers and, when a node is running, each connection's
    /// slot class (social / wide / anchor / inbound) from its status
    /// snapshot (`mesh-status.json`).
    Peers,
    /// Show the running node's mesh map: entries per hop and bytes (from
    /// its status snapshot, written every 10 s; fails when no node runs).
    Map,
    /// Find a node by NodeId through the mesh: direct peers, hop 2, hop 3,
    /// the worm, then the address caches of the anchors its held profile
    /// names and of your own anchors. One-shot: starts an endpoint,
    /// connects to the anchors (anchors.json and the bootstrap list), waits
    /// for their map sync, and resolves. Prints the tier that found it
    /// (direct, hop2, hop3, worm, profileAnchor, bootstrapAnchor), the
    /// worm's hops and the time.
    Lookup {
        /// The NodeId sought (64 hex digits).
        target: NodeId,
    },
    /// Connect to a peer, exchange profiles and pull. `NodeId@host:port`
    /// dials that address; a bare NodeId is first found as `lookup` does.
    Connect {
        /// `NodeId@host:port`, or a NodeId alone.
        target: String,
    },
    /// Pull from every known peer, the bootstrap list and anchors.json.
    Sync,
    /// Direct messages through an anchor's 1:1 channels (sealed end to end;
    /// the anchor holds them while the recipient is offline).
    #[command(subcommand)]
    Dm(DmCommand),
    /// Write this identity to one passphrase-sealed file (Argon2id +
    /// ChaCha20-Poly1305): the network key, every posting key, follows and
    /// circles. Posts are not in it; a restored node pulls them again.
    /// Restore it on another machine with `import`.
    Export {
        /// The file to write (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Read the passphrase from the first line of this file instead of
        /// asking for it (twice) at the terminal.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore an identity from an `export` file into the data directory,
    /// which must be new or empty. Nothing is written unless the whole
    /// bundle decrypts and checks.
    Import {
        /// The file `export` wrote.
        file: PathBuf,
        /// Read the passphrase from the first line of this file instead of
        /// asking for it at the terminal.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        /// Import even though the data directory holds an identity or other
        /// files: they are set aside as DIR.replaced-<ms> (renamed, never
        /// deleted). Refused while a node runs on the directory.
        #[arg(long)]
        replace: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DmCommand {
    /// Show the thread with a peer from the local archive (every DM sent
    /// and read here, with times; no anchor needed).
    History {
        /// The peer's NodeId.
        peer: NodeId,
        /// Most recent messages to show.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Send a DM to a NodeId through an anchor, on a rotated thread: the
    /// first message goes from your NodeId to theirs and starts a chain of
    /// short-lived ids; every later one goes under ids of its own, which the
    /// anchor cannot tie to you, to them or to each other.
    Send {
        /// The anchor (`NodeId@host:port`); default: the first entry of
        /// anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
        /// The recipient's NodeId.
        #[arg(long)]
        to: NodeId,
        /// Restart the thread's chain from your NodeId (when the recipient
        /// lost track of it: more than 10 messages in a row lost).
        #[arg(long)]
        reseed: bool,
        /// Send from your NodeId to theirs without rotating ids.
        #[arg(long, conflicts_with = "reseed")]
        no_rotate: bool,
        /// The text.
        text: String,
    },
    /// Fetch, decrypt and print your queued DMs (those to your NodeId and
    /// those of rotated threads, read under each thread's window of 10
    /// short-lived ids), keep them in the local archive (`dm history`), then
    /// acknowledge them (the anchor deletes them).
    Read {
        /// The anchor; default: the first entry of anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
        /// Leave them queued at the anchor (they come again next time).
        #[arg(long)]
        keep: bool,
    },
    /// List your channels at an anchor and the DMs waiting in each.
    Channels {
        /// The anchor; default: the first entry of anchors.json.
        #[arg(long)]
        anchor: Option<ConnectString>,
    },
}

#[derive(Debug, Subcommand)]
enum ProfileCommand {
    /// Set display name, bio or anchors, and sign and store the profile.
    /// What is not given keeps its current value.
    Set {
        /// Display name (required the first time).
        #[arg(long)]
        name: Option<String>,
        /// Biography.
        #[arg(long)]
        bio: Option<String>,
        /// An anchor you check in with, by NodeId or connect string
        /// (`NodeId@host:port`, also added to anchors.json). Repeatable;
        /// replaces the profile's list.
        #[arg(long)]
        anchor: Vec<AnchorRef>,
        /// Remove every anchor from the profile.
        #[arg(long, conflicts_with = "anchor")]
        no_anchors: bool,
        /// The persona whose profile this is (default: the persona in use).
        #[arg(long = "as", value_name = "PERSONA")]
        persona: Option<String>,
    },
    /// Show a profile (default: your own).
    Show {
        /// Posting id.
        id: Option<PostingId>,
    },
}

#[derive(Debug, Subcommand)]
enum CircleCommand {
    /// Create a circle.
    Create {
        /// Name.
        name: String,
    },
    /// Delete a circle.
    Delete {
        /// Name.
        name: String,
    },
    /// Add a member.
    Add {
        /// Circle name.
        name: String,
        /// Member posting id.
        id: PostingId,
    },
    /// Remove a member, optionally revoking access to past posts.
    Remove {
        /// Circle name.
        name: String,
        /// Member posting id.
        id: PostingId,
        /// `rewrap`: re-wrap the key for the others (cheap); `reencrypt`: new
        /// key, delete the old posts (use when the member may hold them).
        #[arg(long)]
        revoke: Option<RevokeArg>,
    },
    /// List circles.
    List,
    /// List the members of a circle.
    Members {
        /// Name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum AudienceCommand {
    /// Ask an author to join its audience (and follow it).
    Request {
        /// The author's posting id.
        author: PostingId,
        /// Where to reach the author: `NodeId@host:port`.
        #[arg(long)]
        via: ConnectString,
        /// A note to the author.
        #[arg(long, default_value = "")]
        message: String,
    },
    /// List pending requests to join your audience.
    Requests,
    /// Approve a request: the requester receives your public posts by push.
    Approve {
        /// The requester's posting id.
        id: PostingId,
    },
    /// List approved members.
    Members,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RevokeArg {
    Rewrap,
    Reencrypt,
}

fn init_logging(filter: &str) {
    distsoc_net::operator::init_logging(filter, LogFormat::Text);
}

/// Set once a command has printed its JSON result: a command that then
/// fails (`lookup` that found nothing) has already said so on stdout, and
/// no second JSON object follows.
static PRINTED_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn print(json_mode: bool, value: serde_json::Value, human: impl FnOnce() -> String) {
    if json_mode {
        PRINTED_JSON.store(true, std::sync::atomic::Ordering::Relaxed);
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json_mode = cli.json;
    match run_command(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let json_mode = json_mode && !PRINTED_JSON.load(std::sync::atomic::Ordering::Relaxed);
            identity::report_error(&e, json_mode);
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_command(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.data_dir.clone().unwrap_or_else(default_data_dir);
    let json_mode = cli.json;
    if let Command::Init { listen } = &cli.command {
        init_logging("warn");
        let mut config = Config::default();
        if let Some(l) = listen {
            config.listen = *l;
        }
        let node = Node::init(&dir, Some(config))?;
        print(
            json_mode,
            json!({"node_id": node.node_id().to_hex(), "data_dir": dir}),
            || format!("created node {} in {}", node.node_id(), dir.display()),
        );
        return Ok(());
    }
    if let Command::Import {
        file,
        passphrase_file,
        replace,
    } = &cli.command
    {
        init_logging("warn");
        let pass = bundle::read_passphrase(passphrase_file.as_deref(), false)?;
        let r = bundle::import(&dir, file, &pass, *replace, distsoc_net::clock::now_ms())?;
        print(json_mode, json!(r), || {
            let mut out = format!(
                "imported identity {} into {}: {} posting identities, {} follows, {} circles \
                 (exported {})",
                r.node_id,
                r.data_dir.display(),
                r.posting_identities,
                r.follows,
                r.circles,
                fmt_utc(r.exported_at_ms),
            );
            if let Some(aside) = &r.set_aside {
                out.push_str(&format!(
                    "\nthe directory's previous contents are in {}",
                    aside.display()
                ));
            }
            if r.unused_keys > 0 {
                out.push_str(&format!(
                    "\n{} vouch or group keys in the bundle are not used by this node and were \
                     not restored",
                    r.unused_keys
                ));
            }
            out.push_str(
                "\nstart it with `distsoc-node run`; it pulls posts again from the network",
            );
            out
        });
        return Ok(());
    }
    // `run` serves the identity: one process per data directory, held for
    // the life of the process. (The short-lived commands share the store.)
    let _lock = match &cli.command {
        Command::Run { .. } => Some(distsoc_net::datadir::DataDirLock::acquire(&dir)?),
        _ => None,
    };
    let node = Node::open(&dir)?;
    match &cli.command {
        Command::Run { log_format, .. } => {
            distsoc_net::operator::init_logging(&node.config().log, *log_format)
        }
        _ => init_logging("warn"),
    }
    match cli.command {
        Command::Init { .. } => unreachable!("handled above"),
        Command::Run { listen, .. } => run(node, listen, json_mode)?,
        Command::Id => {
            let id = node.node_id();
            print(json_mode, json!({"node_id": id.to_hex()}), || {
                id.to_string()
            });
        }
        Command::Profile(ProfileCommand::Set {
            name,
            bio,
            anchor,
            no_anchors,
            persona,
        }) => {
            let key = node.persona_key(persona.as_deref())?;
            let current = node.store().get_profile(PostingId(key.public()))?;
            let current = current.as_ref().map(|p| p.body());
            let name = match (name, current) {
                (Some(n), _) => n,
                (None, Some(c)) => c.display_name.clone(),
                (None, None) => bail!("this persona has no profile yet: give it a --name"),
            };
            let bio = bio.unwrap_or_else(|| current.map(|c| c.bio.clone()).unwrap_or_default());
            let remembered = anchors::remember(&node, &anchor)?;
            if remembered > 0 && !json_mode {
                eprintln!("{remembered} anchor address(es) saved in anchors.json");
            }
            let anchors = if no_anchors || !anchor.is_empty() {
                anchor.iter().map(|a| a.id).collect()
            } else {
                current.map(|c| c.anchors.clone()).unwrap_or_default()
            };
            let p = node.set_profile_as(persona.as_deref(), name, bio, anchors)?;
            print(
                json_mode,
                json!({"posting_id": p.body().posting_id.to_hex()}),
                || format!("profile of {} updated", p.body().posting_id),
            );
        }
        Command::Profile(ProfileCommand::Show { id }) => {
            let id = match id {
                Some(id) => id,
                None => PostingId(node.posting_key()?.public()),
            };
            match node.store().get_profile(id)? {
                Some(p) => {
                    let b = p.body();
                    let anchors: Vec<String> = b.anchors.iter().map(|a| a.to_hex()).collect();
                    print(
                        json_mode,
                        json!({"posting_id": b.posting_id.to_hex(), "display_name": b.display_name,
                               "bio": b.bio, "anchors": anchors, "updated_at_ms": b.updated_at_ms}),
                        || {
                            format!(
                                "{}\n  {}\n  bio: {}\n  anchors: {}",
                                b.display_name,
                                b.posting_id,
                                b.bio,
                                if anchors.is_empty() {
                                    "none".to_string()
                                } else {
                                    anchors.join(", ")
                                }
                            )
                        },
                    );
                }
                None => bail!("no profile known for {id}"),
            }
        }
        Command::Persona(c) => persona(&node, c, json_mode)?,
        Command::Anchor(c) => anchor(&node, c, json_mode)?,
        Command::Post {
            text,
            to,
            attach,
            persona,
        } => {
            let intent: VisibilityIntent = to.parse()?;
            let mut files = Vec::new();
            for path in attach {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                files.push((bytes, guess_mime(&path).to_string(), name));
            }
            let post = node.post_as(persona.as_deref(), text, files, &intent)?;
            let id = post.post_id();
            let author = post.post.body().author;
            if !post.post.body().is_sealed() && !node.store().audience_members(author)?.is_empty() {
                let rt = tokio::runtime::Runtime::new()?;
                let pushed = rt.block_on(async {
                    let running = node
                        .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
                        .await?;
                    let n = tokio::time::timeout(
                        std::time::Duration::from_secs(15),
                        running.push_to_audience(&post),
                    )
                    .await
                    .unwrap_or(Ok(0));
                    running.transport().close().await;
                    n
                })?;
                if !json_mode {
                    eprintln!("pushed to {pushed} audience member(s)");
                }
            }
            let recipients = post.visibility.recipients().len();
            print(
                json_mode,
                json!({"post_id": id.to_hex(), "encrypted": recipients > 0, "recipients": recipients}),
                || {
                    if recipients > 0 {
                        format!("posted {id} (encrypted for {recipients} recipients, you included)")
                    } else {
                        format!("posted {id}")
                    }
                },
            );
        }
        Command::Delete { id } => {
            let id = distsoc_node::node::parse_post_id(&id)?;
            node.delete_post(id)?;
            print(json_mode, json!({"deleted": id.to_hex()}), || {
                format!("deleted {id}; peers and anchors get the delete when they sync")
            });
        }
        Command::Follow {
            id,
            offline,
            persona,
        } => social::follow(&node, id, offline, persona.as_deref(), json_mode)?,
        Command::Unfollow { id, persona } => {
            social::unfollow(&node, id, persona.as_deref(), json_mode)?
        }
        Command::Following { persona } => social::following(&node, persona.as_deref(), json_mode)?,
        Command::Feed { limit, persona } => {
            social::feed(&node, limit, persona.as_deref(), json_mode)?
        }
        Command::Circle(c) => circle(&node, c, json_mode)?,
        Command::Dm(c) => dm(&node, c, json_mode)?,
        Command::Export {
            out,
            passphrase_file,
        } => {
            let pass = bundle::read_passphrase(passphrase_file.as_deref(), true)?;
            let params = bundle::export_kdf_params();
            let r = bundle::export(&node, &out, &pass, params, distsoc_net::clock::now_ms())?;
            print(json_mode, json!(r), || {
                format!(
                    "exported identity {} to {} ({} bytes): {} posting identities, {} follows, \
                     {} circles\nkeep it and its passphrase safe: together they are this identity",
                    r.node_id,
                    r.path.display(),
                    r.bytes,
                    r.posting_identities,
                    r.follows,
                    r.circles
                )
            });
        }
        Command::Import { .. } => unreachable!("handled above"),
        Command::Audience(c) => audience(&node, c, json_mode)?,
        Command::Peers => peers(&node, json_mode)?,
        Command::Map => map(&node, json_mode)?,
        Command::Lookup { target } => lookup(&node, target, json_mode)?,
        Command::Connect { target } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let running = node
                    .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
                    .await?;
                let result = async {
                    let (peer, how) = match target.parse::<ConnectString>() {
                        Ok(cs) => (running.connect(&cs).await?, None),
                        Err(_) => {
                            let id: NodeId = target.parse().map_err(|e| {
                                anyhow::anyhow!(
                                    "{target:?} is neither NodeId@host:port nor a NodeId: {e}"
                                )
                            })?;
                            running.connect_id(id).await?
                        }
                    };
                    let report = running.sync_with(&peer).await?;
                    anyhow::Ok((peer.node_id(), how, report))
                }
                .await;
                running.transport().close().await;
                let (id, how, report) = result?;
                let tier = how
                    .as_ref()
                    .and_then(|r| r.found.as_ref())
                    .map(|(_, t)| t.as_str());
                let mut v = serde_json::to_value(report)?;
                v["found_by"] = json!(tier);
                print(json_mode, v, || match tier {
                    Some(t) => format!(
                        "found {id} ({t}), connected; pulled {}",
                        posts(report.new_posts)
                    ),
                    None => format!("connected to {id}; pulled {}", posts(report.new_posts)),
                });
                anyhow::Ok(())
            })?;
        }
        Command::Sync => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let running = node
                    .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
                    .await?;
                let results = running.sync_all().await;
                running.transport().close().await;
                let v: Vec<_> = results
                    .iter()
                    .map(|(id, r)| match r {
                        Ok(rep) => {
                            json!({"peer": id.to_hex(), "ok": true, "new_posts": rep.new_posts})
                        }
                        Err(e) => json!({"peer": id.to_hex(), "ok": false, "error": e.to_string()}),
                    })
                    .collect();
                print(json_mode, json!(v), || {
                    results
                        .iter()
                        .map(|(id, r)| match r {
                            Ok(rep) => format!("{}: {}", id.short(), posts(rep.new_posts)),
                            Err(e) => format!("{}: failed: {e}", id.short()),
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                });
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}

fn circle(node: &Node, cmd: CircleCommand, json_mode: bool) -> anyhow::Result<()> {
    let now = distsoc_net::now_ms();
    match cmd {
        CircleCommand::Create { name } => {
            node.store().create_circle(&name, now)?;
            print(json_mode, json!({"created": name}), || {
                format!("circle {name:?} created")
            });
        }
        CircleCommand::Delete { name } => {
            let was = node.store().delete_circle(&name)?;
            print(json_mode, json!({"deleted": was}), || {
                format!("circle {name:?} deleted: {was}")
            });
        }
        CircleCommand::Add { name, id } => {
            node.store().add_circle_member(&name, id, now)?;
            print(
                json_mode,
                json!({"circle": name, "added": id.to_hex()}),
                || format!("added {id} to {name:?}"),
            );
        }
        CircleCommand::Remove { name, id, revoke } => {
            let revoke = revoke.map(|r| match r {
                RevokeArg::Rewrap => Revocation::Rewrap,
                RevokeArg::Reencrypt => Revocation::Reencrypt,
            });
            let changed = node.remove_from_circle(&name, id, revoke)?;
            print(
                json_mode,
                json!({"circle": name, "removed": id.to_hex(), "posts_changed": changed}),
                || format!("removed {id} from {name:?}; {changed} past posts re-keyed"),
            );
        }
        CircleCommand::List => {
            let circles = node.store().circles()?;
            let v: Vec<_> = circles
                .iter()
                .map(|c| json!({"name": c.name, "members": c.members}))
                .collect();
            print(json_mode, json!(v), || {
                circles
                    .iter()
                    .map(|c| format!("{} ({} members)", c.name, c.members))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        CircleCommand::Members { name } => {
            let ids: Vec<String> = node
                .store()
                .circle_members(&name)?
                .iter()
                .map(|i| i.to_hex())
                .collect();
            print(json_mode, json!(ids), || ids.join("\n"));
        }
    }
    Ok(())
}

fn audience(node: &Node, cmd: AudienceCommand, json_mode: bool) -> anyhow::Result<()> {
    let me = PostingId(node.posting_key()?.public());
    match cmd {
        AudienceCommand::Request {
            author,
            via,
            message,
        } => {
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(async {
                let running = node
                    .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
                    .await?;
                let r = running.request_audience(&via, author, message).await;
                running.transport().close().await;
                r
            })?;
            print(json_mode, json!({"requested": author.to_hex()}), || {
                format!("asked {author} to join its audience (and now following it)")
            });
        }
        AudienceCommand::Requests => {
            let reqs = node.store().audience_requests(me)?;
            let v: Vec<_> = reqs
                .iter()
                .map(|r| json!({"requester": r.body().requester.to_hex(), "message": r.body().message}))
                .collect();
            print(json_mode, json!(v), || {
                reqs.iter()
                    .map(|r| format!("{} {:?}", r.body().requester, r.body().message))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        AudienceCommand::Approve { id } => {
            let ok = node.approve_audience(id)?;
            if ok {
                let rt = tokio::runtime::Runtime::new()?;
                let told = rt.block_on(async {
                    let running = node
                        .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
                        .await?;
                    let r = running
                        .send_audience_decision(
                            id,
                            distsoc_protocol::messages::social::AudienceDecision::Approved,
                        )
                        .await;
                    running.transport().close().await;
                    r
                });
                if !json_mode {
                    match told {
                        Ok(true) => eprintln!("the requester was told"),
                        Ok(false) => eprintln!("the requester is not reachable now; it will learn when your posts arrive"),
                        Err(e) => eprintln!("could not tell the requester: {e}"),
                    }
                }
            }
            print(json_mode, json!({"approved": ok}), || {
                if ok {
                    format!("{id} approved")
                } else {
                    format!("no pending request from {id}")
                }
            });
        }
        AudienceCommand::Members => {
            let ids: Vec<String> = node
                .store()
                .audience_members(me)?
                .iter()
                .map(|m| m.member.to_hex())
                .collect();
            print(json_mode, json!(ids), || ids.join("\n"));
        }
    }
    Ok(())
}

/// The anchor given, else the first connect string in anchors.json.
fn dm_anchor(node: &Node, given: Option<ConnectString>) -> anyhow::Result<ConnectString> {
    if let Some(a) = given {
        return Ok(a);
    }
    let path = node.config().anchors_path(node.dir());
    let first = distsoc_node::config::read_anchors(&path)?
        .into_iter()
        .next()
        .with_context(|| {
            format!(
                "no anchor given and {} lists none: pass --anchor NodeId@host:port",
                path.display()
            )
        })?;
    first
        .parse()
        .map_err(|e| anyhow::anyhow!("bad connect string {first:?} in {}: {e}", path.display()))
}

fn dm(node: &Node, cmd: DmCommand, json_mode: bool) -> anyhow::Result<()> {
    let anchor = match &cmd {
        DmCommand::History { peer, limit } => {
            return identity::dm_history(node, *peer, *limit, json_mode)
        }
        DmCommand::Send { anchor, .. }
        | DmCommand::Read { anchor, .. }
        | DmCommand::Channels { anchor } => dm_anchor(node, anchor.clone())?,
    };
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let running = node
            .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
            .await?;
        let result = dm_on(node, &running, &anchor, cmd, json_mode).await;
        running.transport().close().await;
        result
    })
}

async fn dm_on(
    node: &Node,
    running: &distsoc_node::node::Running,
    anchor: &ConnectString,
    cmd: DmCommand,
    json_mode: bool,
) -> anyhow::Result<()> {
    let client = DmClient::connect(running, anchor)
        .await
        .with_context(|| format!("cannot reach the anchor {anchor}"))?;
    match cmd {
        DmCommand::Send {
            to,
            text,
            reseed,
            no_rotate,
            ..
        } => {
            let (sent, rotated) = if no_rotate {
                (client.send(to, &text).await?, None)
            } else {
                let r = client.send_rotating(to, &text, reseed).await?;
                (r.sent, Some(r))
            };
            let mut v = json!({"channel": sent.channel.to_hex(), "message_id": sent.message_id,
                               "expires_at_ms": sent.expires_at_ms});
            if let Some(r) = rotated {
                v["chain_n"] = json!(r.n);
                v["send_id"] = json!(r.send_id.to_hex());
                v["recv_id"] = json!(r.recv_id.to_hex());
            }
            print(json_mode, v, || {
                format!(
                    "sent to {} (channel {}, message {}; sealed, {} bytes at the anchor)",
                    name_of(node, to),
                    sent.channel.short(),
                    sent.message_id,
                    sent.payload_len
                )
            });
        }
        DmCommand::Read { keep, .. } => {
            // The identity channels first: a first message there starts the
            // chain the rotated threads are then read with.
            let mut received = client.read_all(!keep).await?;
            received.extend(client.read_rotated(!keep).await?);
            let name = |id: NodeId| name_of(node, id);
            let v: Vec<_> = received
                .iter()
                .map(|r| match &r.content {
                    Ok(c) => json!({"message_id": r.message_id, "from": r.sender.to_hex(),
                                    "sent_at_ms": c.sent_at_ms, "text": c.text,
                                    "rotated": r.rotated}),
                    Err(e) => json!({"message_id": r.message_id, "from": r.sender.to_hex(),
                                     "error": e.to_string(), "kept": true}),
                })
                .collect();
            print(json_mode, json!(v), || {
                if received.is_empty() {
                    return "no DMs waiting".to_string();
                }
                received
                    .iter()
                    .map(|r| match &r.content {
                        Ok(c) => {
                            format!("{}  {}: {}", fmt_utc(c.sent_at_ms), name(r.sender), c.text)
                        }
                        Err(e) => format!(
                            "{}: (unreadable: {e}; kept in this node's store, not lost)",
                            name(r.sender)
                        ),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        DmCommand::History { .. } => unreachable!("handled without an anchor"),
        DmCommand::Channels { .. } => {
            let channels = client.list_channels().await?;
            let v: Vec<_> = channels
                .iter()
                .map(|c| {
                    json!({"channel": c.channel_id.to_hex(), "peer": c.peer.to_hex(),
                                "queued": c.queued, "created_at_ms": c.created_at_ms})
                })
                .collect();
            print(json_mode, json!(v), || {
                channels
                    .iter()
                    .map(|c| {
                        format!(
                            "{} with {}: {} waiting",
                            c.channel_id,
                            name_of(node, c.peer),
                            c.queued
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    identity::deposit_after_dm(running, client.anchor(), json_mode).await;
    Ok(())
}

/// A peer's display name where its profile is known, else its short id.
fn name_of(node: &Node, id: NodeId) -> String {
    node.store()
        .get_profile(PostingId(id.0))
        .ok()
        .flatten()
        .map(|p| format!("{} ({})", p.body().display_name, id.short()))
        .unwrap_or_else(|| id.short())
}

fn run(node: Node, listen: Option<SocketAddr>, json_mode: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // Installed before the connect string is printed: a SIGTERM sent
        // once it is stops the node gracefully.
        let shutdown = distsoc_net::shutdown_signal();
        let profile = node.config().mesh.profile;
        let running = node.start_mesh(listen, mesh::mesh_config(profile)).await?;
        let cs = running.connect_string()?;
        tracing::info!(node = %node.node_id(), connect = %cs, profile = profile.as_str(), "node running");
        print(json_mode, json!({"connect": cs}), || {
            format!("listening: {cs}")
        });
        // The mesh: join through the anchors, then keep the social wish
        // list current and the status snapshot fresh.
        let mesh_task = {
            let running = running.clone();
            tokio::spawn(async move {
                let anchors = running.join_mesh().await;
                tracing::info!(anchors, "joined the mesh");
                let mut every = tokio::time::interval(SOCIAL_REFRESH);
                loop {
                    every.tick().await;
                    running.refresh_social();
                }
            })
        };
        let status_task = {
            let running = running.clone();
            tokio::spawn(async move { running.write_status_forever().await })
        };
        running.serve_until(shutdown).await;
        mesh_task.abort();
        status_task.abort();
        mesh::StatusSnapshot::remove(node.dir());
        tracing::info!("node stopped");
        anyhow::Ok(())
    })
}

/// How often `run` re-reads follows and audience into the social slots.
const SOCIAL_REFRESH: std::time::Duration = std::time::Duration::from_secs(60);

/// The running node's status snapshot, or why there is none.
fn fresh_status(node: &Node) -> anyhow::Result<Result<mesh::StatusSnapshot, String>> {
    let now = distsoc_net::now_ms();
    Ok(match mesh::StatusSnapshot::read(node.dir())? {
        Some(s) if s.is_fresh(now) => Ok(s),
        Some(s) => Err(format!(
            "no node is running in {} (its last status snapshot is {} s old); start `distsoc-node run`",
            node.dir().display(),
            s.age_secs(now)
        )),
        None => Err(format!(
            "no node is running in {} (no status snapshot); start `distsoc-node run`",
            node.dir().display()
        )),
    })
}

fn map(node: &Node, json_mode: bool) -> anyhow::Result<()> {
    let s = fresh_status(node)?.map_err(|e| anyhow::anyhow!(e))?;
    let m = &s.map;
    print(
        json_mode,
        json!({"node_id": s.node_id, "profile": s.profile, "written_at_ms": s.written_at_ms,
               "hop1": m.hop1, "hop2": m.hop2, "hop3": m.hop3, "hop3_raw": m.hop3_raw,
               "bytes": m.bytes, "connections": s.peers.len(), "gaps": s.gaps,
               "rate_limited": s.rate_limited}),
        || {
            format!(
                "hop 1: {} entries\nhop 2: {} entries\nhop 3: {} entries ({} fingerprints kept)\nmap memory: {} bytes\nprofile: {}, {} connections",
                m.hop1, m.hop2, m.hop3, m.hop3_raw, m.bytes, s.profile, s.peers.len()
            )
        },
    );
    Ok(())
}

fn peers(node: &Node, json_mode: bool) -> anyhow::Result<()> {
    let status = fresh_status(node)?;
    let classes: std::collections::HashMap<String, String> = match &status {
        Ok(s) => s
            .peers
            .iter()
            .map(|p| (p.node_id.clone(), p.class.clone()))
            .collect(),
        Err(why) => {
            if !json_mode {
                eprintln!("{why}: slot classes unknown");
            }
            Default::default()
        }
    };
    let known = node.store().peers(1000)?;
    let mut v: Vec<serde_json::Value> = Vec::new();
    let mut lines = Vec::new();
    for p in &known {
        let hex = p.node_id.to_hex();
        let class = classes.get(&hex);
        let a: Vec<String> = p.addresses.iter().map(|a| a.to_string()).collect();
        lines.push(format!(
            "{} {}{} [{}]",
            p.node_id,
            a.join(","),
            if p.is_anchor { " anchor" } else { "" },
            class.map_or("not connected", String::as_str)
        ));
        v.push(
            json!({"node_id": hex, "addresses": p.addresses, "is_anchor": p.is_anchor,
                      "last_seen_ms": p.last_seen_ms, "class": class}),
        );
    }
    // Connections of the running node that are not in the peer records.
    if let Ok(s) = &status {
        for p in &s.peers {
            if !known.iter().any(|k| k.node_id.to_hex() == p.node_id) {
                lines.push(format!("{} [{}]", p.node_id, p.class));
                v.push(
                    json!({"node_id": p.node_id, "addresses": [], "is_anchor": p.class == "anchor",
                              "last_seen_ms": null, "class": p.class}),
                );
            }
        }
    }
    print(json_mode, json!(v), || lines.join("\n"));
    Ok(())
}

fn lookup(node: &Node, target: NodeId, json_mode: bool) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let res = rt.block_on(async {
        let running = node
            .start(Some(SocketAddr::from(([0, 0, 0, 0], 0))))
            .await?;
        let r = running.lookup(target).await;
        running.transport().close().await;
        r
    })?;
    let ms = res.elapsed.as_millis();
    match &res.found {
        Some((pa, tier)) => {
            let addrs: Vec<String> = pa.addresses.iter().map(|a| a.0.to_string()).collect();
            print(
                json_mode,
                json!({"node_id": target.to_hex(), "found": true, "tier": tier.as_str(),
                       "addresses": addrs, "is_anchor": pa.is_anchor, "hops": res.hops,
                       "messages": res.messages, "elapsed_ms": ms}),
                || {
                    format!(
                        "{target} found by {} in {ms} ms (worm hops {}, {} requests)\n  {}",
                        tier.as_str(),
                        res.hops,
                        res.messages,
                        addrs.join(", ")
                    )
                },
            );
            Ok(())
        }
        None => {
            if json_mode {
                print(
                    true,
                    json!({"node_id": target.to_hex(), "found": false, "tier": null,
                           "hops": res.hops, "messages": res.messages, "elapsed_ms": ms}),
                    String::new,
                );
            }
            let hint = if mesh::configured_anchors(node).is_empty() {
                "; no anchors are configured: list one in anchors.json (NodeId@host:port)"
            } else {
                ""
            };
            bail!(
                "{target} not found in {ms} ms ({} requests: mesh map, worm, anchors){hint}",
                res.messages
            )
        }
    }
}

fn guess_mime(path: &std::path::Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("txt") => "text/plain",
        Some("pdf") => "application/pdf",
        _ => "application/octet-stream",
    }
}
