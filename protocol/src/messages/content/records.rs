//! Author records about a post: delete records ([`DeleteRecordBody`]) and
//! visibility updates ([`VisibilityUpdateBody`]), and when each applies.

use distsoc_schema::content_capnp;

use crate::codec::{self, Struct};
use crate::error::DecodeError;
use crate::ids::{PostId, PostingId};
use crate::messages::signed::{Signed, SignedBody};
use crate::sign::Purpose;

use super::{
    bad_sig, post_id, posting_id, IngestError, PostVisibility, SignedPost, MAX_DELETE_RECORD_BYTES,
    MAX_VISIBILITY_UPDATE_BYTES,
};

// ---------------------------------------------------------------------------
// Delete records and visibility updates
// ---------------------------------------------------------------------------

/// `DeleteRecordBody`: an author's request that everyone delete a post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeleteRecordBody {
    /// The post to delete.
    pub post_id: PostId,
    /// The post's author, who signs the record.
    pub author: PostingId,
    /// When the delete was issued, ms since epoch.
    pub deleted_at_ms: u64,
    /// The post replacing the deleted one (re-encrypt revocation).
    pub replaced_by: Option<PostId>,
}

impl DeleteRecordBody {
    /// Checks that the record targets `post` (`idMismatch`) and comes from its
    /// author (`unauthorized`). Does not verify the record's signature (the
    /// signed record's `validate_for` does both).
    pub fn applies_to(&self, post: &SignedPost) -> Result<(), IngestError> {
        let id = post.post_id();
        if self.post_id != id {
            return Err(IngestError::IdMismatch {
                what: "deleteRecord",
                expected: id.0,
                got: self.post_id.0,
            });
        }
        if self.author != post.body().author {
            return Err(IngestError::Unauthorized {
                what: "deleteRecord",
                reason: "not the post's author",
            });
        }
        Ok(())
    }
}

impl Struct for DeleteRecordBody {
    type Schema = content_capnp::delete_record_body::Owned;

    fn read(r: content_capnp::delete_record_body::Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            author: posting_id("author", r.get_author())?,
            deleted_at_ms: r.get_deleted_at_ms(),
            replaced_by: codec::opt_id("replacedBy", r.get_replaced_by())?.map(PostId),
        })
    }

    fn write(&self, mut b: content_capnp::delete_record_body::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_author(self.author.as_bytes());
        b.set_deleted_at_ms(self.deleted_at_ms);
        if let Some(id) = &self.replaced_by {
            b.set_replaced_by(id.as_bytes());
        }
    }
}

impl SignedBody for DeleteRecordBody {
    const PURPOSE: Purpose = Purpose::DeleteRecord;
    const MAX_BYTES: usize = MAX_DELETE_RECORD_BYTES;
    const FIELD: &'static str = "record";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(
    DeleteRecordBody,
    content_capnp::signed_delete_record::Owned,
    get_record,
    set_record
);

/// `SignedDeleteRecord`: a delete record and the author's signature.
pub type SignedDeleteRecord = Signed<DeleteRecordBody>;

impl Signed<DeleteRecordBody> {
    /// [`DeleteRecordBody::applies_to`], then verifies the signature
    /// (`badSignature`).
    pub fn validate_for(&self, post: &SignedPost) -> Result<(), IngestError> {
        self.body().applies_to(post)?;
        self.verify().map_err(bad_sig("deleteRecord"))
    }
}

/// `VisibilityUpdateBody`: new visibility for an existing post.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisibilityUpdateBody {
    /// The post whose visibility changes.
    pub post_id: PostId,
    /// The post's author, who signs the update.
    pub author: PostingId,
    /// The complete new visibility.
    pub visibility: PostVisibility,
    /// When the change was made, ms since epoch.
    pub updated_at_ms: u64,
}

impl VisibilityUpdateBody {
    /// Checks that the update targets `post` (`idMismatch`), comes from its
    /// author (`unauthorized`) and keeps visibility and content consistent:
    /// encrypted exactly when the content is sealed (`malformed`). Does not
    /// verify the update's signature.
    pub fn applies_to(&self, post: &SignedPost) -> Result<(), IngestError> {
        let id = post.post_id();
        if self.post_id != id {
            return Err(IngestError::IdMismatch {
                what: "visibilityUpdate",
                expected: id.0,
                got: self.post_id.0,
            });
        }
        if self.author != post.body().author {
            return Err(IngestError::Unauthorized {
                what: "visibilityUpdate",
                reason: "not the post's author",
            });
        }
        if self.visibility.is_encrypted() != post.body().is_sealed() {
            return Err(IngestError::Malformed {
                what: "visibilityUpdate",
                reason: "visibility must be encrypted exactly when the content is sealed",
            });
        }
        Ok(())
    }
}

impl Struct for VisibilityUpdateBody {
    type Schema = content_capnp::visibility_update_body::Owned;

    fn read(r: content_capnp::visibility_update_body::Reader<'_>) -> Result<Self, DecodeError> {
        if !r.has_visibility() {
            return Err(DecodeError::Missing("visibility"));
        }
        Ok(Self {
            post_id: post_id("postId", r.get_post_id())?,
            author: posting_id("author", r.get_author())?,
            visibility: PostVisibility::read(r.get_visibility()?)?,
            updated_at_ms: r.get_updated_at_ms(),
        })
    }

    fn write(&self, mut b: content_capnp::visibility_update_body::Builder<'_>) {
        b.set_post_id(self.post_id.as_bytes());
        b.set_author(self.author.as_bytes());
        self.visibility.write(b.reborrow().init_visibility());
        b.set_updated_at_ms(self.updated_at_ms);
    }
}

impl SignedBody for VisibilityUpdateBody {
    const PURPOSE: Purpose = Purpose::VisibilityUpdate;
    const MAX_BYTES: usize = MAX_VISIBILITY_UPDATE_BYTES;
    const FIELD: &'static str = "update";
    fn signer(&self) -> PostingId {
        self.author
    }
}

crate::signed_carrier!(
    VisibilityUpdateBody,
    content_capnp::signed_visibility_update::Owned,
    get_update,
    set_update
);

/// `SignedVisibilityUpdate`: a visibility update and the author's signature.
pub type SignedVisibilityUpdate = Signed<VisibilityUpdateBody>;

impl Signed<VisibilityUpdateBody> {
    /// [`VisibilityUpdateBody::applies_to`], then verifies the signature
    /// (`badSignature`).
    pub fn validate_for(&self, post: &SignedPost) -> Result<(), IngestError> {
        self.body().applies_to(post)?;
        self.verify().map_err(bad_sig("visibilityUpdate"))
    }
}
