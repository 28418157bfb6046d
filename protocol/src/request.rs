//! Typed requests and pushes: each request message type names its response
//! type ([`Request::Response`]), and each push message type is marked
//! [`Push`], so a runtime can send a request and get its own response type
//! back, and register one handler per message code, with no run-time check
//! that a reply has the right type.
//!
//! The impls are generated from one table below; a compile-time assertion
//! per row checks it against the code registry ([`MessageCode::kind`] and
//! [`MessageCode::response`]), and a test checks that every request and push
//! code of the registry has its row.

use crate::codec::WireMessage;
use crate::codes::{Kind, MessageCode};
use crate::messages::discovery::{
    AddressRequest, AddressResponse, BootstrapRequest, BootstrapResponse, InitialMapSync,
    MapSyncRequest, RoutingDiff, WormQuery, WormRequest, WormResponse,
};
use crate::messages::files::{
    AuthorUpdatePush, AuthorUpdateRequest, AuthorUpdateResponse, BlobHeaderDiff, FileRequest,
    FileResponse, ManifestPush, PostNotification,
};
use crate::messages::mailbox::{
    CreateChannel, CreateChannelResponse, Enqueue, EnqueueResponse, Fetch, FetchResponse,
    FetchWait, FetchWaitResponse, ListChannels, ListChannelsResponse,
};
use crate::messages::social::{
    AudienceRequest, AudienceResponse, Comment, DeleteRecord, ProfileUpdate, PullSyncRequest,
    PullSyncResponse, PushPost, VisibilityUpdate, VouchGrant,
};
use crate::messages::wire::{Hello, HelloResponse};
use crate::messages::Message;

/// A message of [`Kind::Request`]: sent on a bidirectional stream and
/// answered with [`Request::Response`] (or an `Error`). `Self::CODE` is its
/// code ([`WireMessage::CODE`]).
///
/// `Hello` is a request too, but the transport sends and answers it itself.
pub trait Request:
    WireMessage + Into<Message> + TryFrom<Message, Error = Message> + Send + 'static
{
    /// The success response: its code is `Self::CODE.response()`.
    type Response: WireMessage + Into<Message> + TryFrom<Message, Error = Message> + Send + 'static;
}

/// A message of [`Kind::Push`]: one-way, sent on a unidirectional stream (no
/// answer) or on a bidirectional one (answered `Ack` or `Error`).
pub trait Push:
    WireMessage + Into<Message> + TryFrom<Message, Error = Message> + Send + 'static
{
}

/// `Some(code)` and `code` are the same code (usable in a `const`).
const fn is_response(response: Option<MessageCode>, code: MessageCode) -> bool {
    match response {
        Some(r) => r as u8 == code as u8,
        None => false,
    }
}

/// Whether `code` is of kind `kind` (usable in a `const`).
const fn is_kind(code: MessageCode, kind: Kind) -> bool {
    code.kind() as u8 == kind as u8
}

macro_rules! typed_messages {
    (
        requests { $($req:ty => $resp:ty,)* }
        pushes { $($push:ty,)* }
    ) => {
        $(
            impl Request for $req {
                type Response = $resp;
            }
            const _: () = assert!(
                is_kind(<$req as WireMessage>::CODE, Kind::Request)
                    && is_response(
                        <$req as WireMessage>::CODE.response(),
                        <$resp as WireMessage>::CODE,
                    ),
                concat!(stringify!($req), " is not answered by ", stringify!($resp)),
            );
        )*
        $(
            impl Push for $push {}
            const _: () = assert!(
                is_kind(<$push as WireMessage>::CODE, Kind::Push),
                concat!(stringify!($push), " is not a push"),
            );
        )*

        /// The codes with a [`Request`] impl, in table order.
        pub const REQUEST_CODES: &[MessageCode] = &[$(<$req as WireMessage>::CODE),*];
        /// The codes with a [`Push`] impl, in table order.
        pub const PUSH_CODES: &[MessageCode] = &[$(<$push as WireMessage>::CODE),*];
    };
}

typed_messages! {
    requests {
        Hello => HelloResponse,
        BootstrapRequest => BootstrapResponse,
        WormRequest => WormResponse,
        WormQuery => WormResponse,
        AddressRequest => AddressResponse,
        FileRequest => FileResponse,
        AuthorUpdateRequest => AuthorUpdateResponse,
        PullSyncRequest => PullSyncResponse,
        CreateChannel => CreateChannelResponse,
        Enqueue => EnqueueResponse,
        Fetch => FetchResponse,
        FetchWait => FetchWaitResponse,
        ListChannels => ListChannelsResponse,
    }
    pushes {
        RoutingDiff,
        InitialMapSync,
        MapSyncRequest,
        AuthorUpdatePush,
        PostNotification,
        ManifestPush,
        BlobHeaderDiff,
        PushPost,
        AudienceRequest,
        AudienceResponse,
        ProfileUpdate,
        DeleteRecord,
        VisibilityUpdate,
        VouchGrant,
        Comment,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_and_push_code_has_its_typed_impl() {
        for &code in MessageCode::ALL {
            let (listed, table) = match code.kind() {
                Kind::Request => (REQUEST_CODES.contains(&code), "REQUEST_CODES"),
                Kind::Push => (PUSH_CODES.contains(&code), "PUSH_CODES"),
                Kind::Response => continue,
            };
            assert!(listed, "{code} is missing from {table}");
        }
        let kinds = MessageCode::ALL
            .iter()
            .filter(|c| c.kind() != Kind::Response)
            .count();
        assert_eq!(REQUEST_CODES.len() + PUSH_CODES.len(), kinds);
    }

    #[test]
    fn a_message_converts_to_and_from_its_variant() {
        let req = ListChannels::new(7);
        let msg: Message = req.into();
        assert_eq!(msg.code(), MessageCode::ListChannels);
        assert_eq!(ListChannels::try_from(msg.clone()), Ok(req));
        assert_eq!(Fetch::try_from(msg.clone()), Err(msg));
    }
}
