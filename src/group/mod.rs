//! Consumer groups: membership, assignment and committed offsets.

pub(crate) mod assignor;
pub(crate) mod offset_codec;
