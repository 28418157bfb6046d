//! Frames decoded for people: the message's root struct read with the
//! schema's generated readers and printed in Cap'n Proto text form (field
//! names, enumerants by name, data as hex), indented, and bounded.
//!
//! Used by the reports' frame logs ([`super::trace`]); never to judge a
//! reply.

use std::fmt::{self, Write as _};

use capnp::message::{Reader, ReaderSegments};
use distsoc_schema::{discovery_capnp, files_capnp, mailbox_capnp, social_capnp, wire_capnp};

use super::frame::RawFrame;

/// A writer that takes at most `max` bytes, then fails (which stops the
/// printer early).
struct Bounded {
    s: String,
    max: usize,
    cut: bool,
}

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.s.len() + s.len() > self.max {
            let mut end = self.max.saturating_sub(self.s.len());
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.s.push_str(&s[..end]);
            self.cut = true;
            return Err(fmt::Error);
        }
        self.s.push_str(s);
        Ok(())
    }
}

fn show<T>(reader: &Reader<impl ReaderSegments>, max: usize) -> Result<String, String>
where
    T: capnp::traits::OwnedStruct,
    for<'a> T::Reader<'a>: fmt::Debug + capnp::traits::FromPointerReader<'a>,
{
    let root: T::Reader<'_> = reader.get_root().map_err(|e| e.to_string())?;
    let mut out = Bounded {
        s: String::new(),
        max,
        cut: false,
    };
    match write!(out, "{root:#?}") {
        Ok(()) => Ok(out.s),
        Err(_) if out.cut => {
            out.s.push_str(" … [cut]");
            Ok(out.s)
        }
        Err(_) => Err(format!("unreadable field after: {}", out.s)),
    }
}

/// The frame's message in Cap'n Proto text form, at most `max` bytes (cut
/// with ` … [cut]`), e.g. `(version = 2, want = 5)`.
pub fn text(frame: &RawFrame, max: usize) -> Result<String, String> {
    let info = distsoc_schema::limits::message_code(frame.code)
        .ok_or_else(|| format!("unknown code 0x{:02x}", frame.code))?;
    let reader = frame.reader();
    match info.root {
        "Ack" => show::<wire_capnp::ack::Owned>(&reader, max),
        "AddressRequest" => show::<discovery_capnp::address_request::Owned>(&reader, max),
        "AddressResponse" => show::<discovery_capnp::address_response::Owned>(&reader, max),
        "AudienceRequest" => show::<social_capnp::audience_request::Owned>(&reader, max),
        "AudienceResponse" => show::<social_capnp::audience_response::Owned>(&reader, max),
        "AuthorUpdatePush" => show::<files_capnp::author_update_push::Owned>(&reader, max),
        "AuthorUpdateRequest" => show::<files_capnp::author_update_request::Owned>(&reader, max),
        "AuthorUpdateResponse" => show::<files_capnp::author_update_response::Owned>(&reader, max),
        "BlobHeaderDiff" => show::<files_capnp::blob_header_diff::Owned>(&reader, max),
        "BootstrapRequest" => show::<discovery_capnp::bootstrap_request::Owned>(&reader, max),
        "BootstrapResponse" => show::<discovery_capnp::bootstrap_response::Owned>(&reader, max),
        "Comment" => show::<social_capnp::comment::Owned>(&reader, max),
        "CreateChannel" => show::<mailbox_capnp::create_channel::Owned>(&reader, max),
        "CreateChannelResponse" => {
            show::<mailbox_capnp::create_channel_response::Owned>(&reader, max)
        }
        "DeleteRecord" => show::<social_capnp::delete_record::Owned>(&reader, max),
        "Enqueue" => show::<mailbox_capnp::enqueue::Owned>(&reader, max),
        "EnqueueResponse" => show::<mailbox_capnp::enqueue_response::Owned>(&reader, max),
        "Error" => show::<wire_capnp::error::Owned>(&reader, max),
        "Fetch" => show::<mailbox_capnp::fetch::Owned>(&reader, max),
        "FetchResponse" => show::<mailbox_capnp::fetch_response::Owned>(&reader, max),
        "FetchWait" => show::<mailbox_capnp::fetch_wait::Owned>(&reader, max),
        "FileRequest" => show::<files_capnp::file_request::Owned>(&reader, max),
        "FileResponse" => show::<files_capnp::file_response::Owned>(&reader, max),
        "Hello" => show::<wire_capnp::hello::Owned>(&reader, max),
        "HelloResponse" => show::<wire_capnp::hello_response::Owned>(&reader, max),
        "InitialMapSync" => show::<discovery_capnp::initial_map_sync::Owned>(&reader, max),
        "ListChannels" => show::<mailbox_capnp::list_channels::Owned>(&reader, max),
        "ListChannelsResponse" => {
            show::<mailbox_capnp::list_channels_response::Owned>(&reader, max)
        }
        "ManifestPush" => show::<files_capnp::manifest_push::Owned>(&reader, max),
        "MapSyncRequest" => show::<discovery_capnp::map_sync_request::Owned>(&reader, max),
        "PostNotification" => show::<files_capnp::post_notification::Owned>(&reader, max),
        "ProfileUpdate" => show::<social_capnp::profile_update::Owned>(&reader, max),
        "PullSyncRequest" => show::<social_capnp::pull_sync_request::Owned>(&reader, max),
        "PullSyncResponse" => show::<social_capnp::pull_sync_response::Owned>(&reader, max),
        "PushPost" => show::<social_capnp::push_post::Owned>(&reader, max),
        "RoutingDiff" => show::<discovery_capnp::routing_diff::Owned>(&reader, max),
        "VisibilityUpdate" => show::<social_capnp::visibility_update::Owned>(&reader, max),
        "VouchGrant" => show::<social_capnp::vouch_grant::Owned>(&reader, max),
        "WormQuery" => show::<discovery_capnp::worm_query::Owned>(&reader, max),
        "WormRequest" => show::<discovery_capnp::worm_request::Owned>(&reader, max),
        "WormResponse" => show::<discovery_capnp::worm_response::Owned>(&reader, max),
        other => Err(format!("no reader for root {other}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::suite::ctx::{req, HelloSpec};

    #[test]
    fn every_code_has_a_reader_and_text_is_bounded() {
        for c in distsoc_schema::limits::MESSAGE_CODES {
            // An empty root struct of each code reads.
            let f = RawFrame::parse(&crate::suite::wire::single(c.code, &[0])).unwrap();
            assert!(text(&f, 1000).is_ok(), "{}", c.name);
        }
        let hello = RawFrame::parse(&HelloSpec::default().frame()).unwrap();
        let t = text(&hello, 4096).unwrap();
        assert!(
            t.contains("version = 2,\n") && t.contains("agent = \"distsoc-conformance/"),
            "{t}"
        );
        let big = RawFrame::parse(&req::enqueue(2, None, &[1; 32], &[7; 9000])).unwrap();
        let t = text(&big, 200).unwrap();
        assert!(t.len() < 220 && t.ends_with("[cut]"), "{t}");
    }
}
