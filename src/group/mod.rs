//! Consumer groups: membership, assignment and committed offsets.

use std::sync::Arc;

use crate::clock::Clock;
use crate::error::Result;
use crate::log::Topic;
use crate::types::TopicName;

/// Tracks consumer groups. (Scaffold; the coordinator lands next.)
#[derive(Debug)]
pub(crate) struct GroupCoordinator {
    _offsets: Arc<Topic>,
    _clock: Arc<dyn Clock>,
}

impl GroupCoordinator {
    pub(crate) fn load(offsets: Arc<Topic>, clock: Arc<dyn Clock>) -> Result<Self> {
        Ok(GroupCoordinator {
            _offsets: offsets,
            _clock: clock,
        })
    }
    pub(crate) fn topic_deleted(&self, _topic: &Topic) -> Result<()> {
        Ok(())
    }
    pub(crate) fn topic_grew(&self, _topic: &TopicName) {}
    pub(crate) fn expire_members(&self) {}
    pub(crate) fn close(&self) {}
}
