//! Personas: the posting identities a person posts as (identity rollout
//! phase 5). One node holds one network key (connections) and any number of
//! posting keys (content). The first persona, `default`, is the network key
//! itself (a pre-split identity: posting id = NodeId), so a person with one
//! identity sees no change until they create a second persona.
//!
//! Follows belong to a persona (`follow --as`); the merged feed labels
//! which persona's follow surfaced each item and `feed --persona` shows one
//! persona's view (`crate::feed`). A post to a circle without `--as` goes
//! out as the persona last used for that circle. Circles themselves are
//! shared by the personas.

use distsoc_protocol::ids::{NodeId, PostingId};
use distsoc_protocol::messages::identity::{
    PostingIdentity, PublicProfile, SignedProfile, MAX_LABEL_BYTES,
};
use distsoc_protocol::sign::SigningKey;

use distsoc_net::now_ms;

use crate::compose;
use crate::node::{Node, NodeError};
use crate::store::PostingIdentityInfo;

impl Node {
    /// The personas (posting identities that are not ephemeral DM ids),
    /// oldest first; `is_default` marks the one posts use.
    pub fn personas(&self) -> Result<Vec<PostingIdentityInfo>, NodeError> {
        Ok(self
            .store
            .posting_identities()?
            .into_iter()
            .filter(|p| !p.ephemeral)
            .collect())
    }

    /// The persona named `name` ([`NodeError::Invalid`] naming the
    /// personas there are, when there is none).
    pub fn persona(&self, name: &str) -> Result<PostingIdentityInfo, NodeError> {
        let all = self.personas()?;
        all.iter()
            .find(|p| p.display_name == name)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|p| p.display_name.as_str()).collect();
                NodeError::Invalid(format!(
                    "no persona named {name:?} (personas: {})",
                    names.join(", ")
                ))
            })
    }

    /// Creates a persona with a fresh posting key. Names are unique, 1 to
    /// 128 bytes, not only whitespace.
    pub fn create_persona(&self, name: &str) -> Result<PostingIdentityInfo, NodeError> {
        if name.trim().is_empty() || name.len() > MAX_LABEL_BYTES {
            return Err(NodeError::Invalid(format!(
                "a persona name is 1 to {MAX_LABEL_BYTES} bytes, not only spaces"
            )));
        }
        if self.personas()?.iter().any(|p| p.display_name == name) {
            return Err(NodeError::Invalid(format!(
                "a persona named {name:?} exists"
            )));
        }
        let p = PostingIdentity::generate(&mut rand_core::OsRng, name, now_ms(), false);
        self.store.add_posting_identity(&p)?;
        self.persona(name)
    }

    /// Makes the persona named `name` the default: posts, profile and
    /// deletes use its key from now on.
    pub fn use_persona(&self, name: &str) -> Result<PostingIdentityInfo, NodeError> {
        let p = self.persona(name)?;
        self.store.set_default_posting_identity(p.posting_id)?;
        self.persona(name)
    }

    /// Forgets a persona's posting key (overwritten on disk). Refused for
    /// the default persona and for the network key's own persona. Its
    /// posts stay where they were published; nobody can post as it again,
    /// from this machine or from an export made after this.
    pub fn delete_persona(&self, name: &str) -> Result<PostingId, NodeError> {
        let p = self.persona(name)?;
        if p.is_default {
            return Err(NodeError::Invalid(format!(
                "{name:?} is the default persona; `persona use` another one first"
            )));
        }
        if p.posting_id.0 == self.node_id().0 {
            return Err(NodeError::Invalid(format!(
                "{name:?} is this node's own key (its NodeId); it cannot be deleted"
            )));
        }
        self.store.remove_posting_identity(p.posting_id)?;
        Ok(p.posting_id)
    }

    /// The posting key of the persona named `name`, or the default's.
    pub fn persona_key(&self, name: Option<&str>) -> Result<SigningKey, NodeError> {
        let Some(name) = name else {
            return self.posting_key();
        };
        let p = self.persona(name)?;
        let held = self
            .store
            .posting_identity(p.posting_id)?
            .ok_or_else(|| NodeError::Invalid(format!("persona {name:?} has no key")))?;
        Ok(SigningKey::from_seed(&held.secret_seed))
    }

    /// The key a post to circle `name` is signed with when no persona is
    /// named: the persona last used to post there, while it exists; else
    /// the default.
    pub fn circle_persona_key(&self, name: &str) -> Result<SigningKey, NodeError> {
        if let Some(p) = self.store.circle_last_persona(name)? {
            if let Some(held) = self.store.posting_identity(p)? {
                return Ok(SigningKey::from_seed(&held.secret_seed));
            }
        }
        self.posting_key()
    }

    /// The posting id of the persona named `name` (`None`: the default).
    pub fn persona_id(&self, name: Option<&str>) -> Result<PostingId, NodeError> {
        Ok(PostingId(self.persona_key(name)?.public()))
    }

    /// Follows `id` from persona `name` (`None`: the default). Refused for
    /// this node's own ids. Returns `false` if that persona already follows
    /// it.
    pub fn follow_as(&self, name: Option<&str>, id: PostingId) -> Result<bool, NodeError> {
        if self.own_ids()?.contains(&id.0) {
            return Err(NodeError::Invalid(format!(
                "{id} is you (this node or one of its personas); follow someone else"
            )));
        }
        let persona = self.persona_id(name)?;
        Ok(self.store.follow_as(id, persona, now_ms())?)
    }

    /// Signs and stores a new profile for the default posting identity.
    pub fn set_profile(
        &self,
        display_name: String,
        bio: String,
        anchors: Vec<NodeId>,
    ) -> Result<SignedProfile, NodeError> {
        self.set_profile_as(None, display_name, bio, anchors)
    }

    /// [`Node::set_profile`] for the persona named `persona` (`None`: the
    /// default).
    pub fn set_profile_as(
        &self,
        persona: Option<&str>,
        display_name: String,
        bio: String,
        anchors: Vec<NodeId>,
    ) -> Result<SignedProfile, NodeError> {
        let key = self.persona_key(persona)?;
        let profile = PublicProfile {
            posting_id: PostingId(key.public()),
            display_name,
            bio,
            anchors,
            avatar: None,
            updated_at_ms: now_ms(),
            network_id: Some(self.node_id()),
        };
        compose::check_limits("profile", &profile)?;
        let signed = distsoc_protocol::messages::content::sign_checked(profile, &key)
            .map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.store.upsert_profile(&signed)?;
        Ok(signed)
    }
}
