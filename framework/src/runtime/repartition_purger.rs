//! [`RepartitionPurger`]: deletes the records of repartition topics that this thread has
//! committed past (docs/semantics.md §6 step 5), at most once per purge interval, off the
//! processing thread.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::client_config::ClientRole;
use crate::task::TopicPartition;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::{Offset, TopicPartitionList};

/// Deletes records of repartition topics that this thread has committed past
/// (docs/semantics.md §6 step 5), at most once per purge interval, off the processing thread.
pub(crate) struct RepartitionPurger {
    admin: Option<Arc<AdminClient<DefaultClientContext>>>,
    interval: Duration,
    last: std::time::Instant,
    /// Highest committed offset per repartition partition not yet purged.
    pending: BTreeMap<TopicPartition, i64>,
}

impl RepartitionPurger {
    pub(crate) fn new(config: &crate::config::StreamsConfig) -> Self {
        let admin = config
            .with_client_properties(
                ClientRole::Admin,
                rdkafka::ClientConfig::new().set("bootstrap.servers", &config.bootstrap_servers),
            )
            .create()
            .map_err(|e| tracing::warn!(error = %e, "no admin client: repartition topics will not be purged"))
            .ok()
            .map(Arc::new);
        RepartitionPurger {
            admin,
            interval: config.repartition_purge_interval,
            last: std::time::Instant::now(),
            pending: BTreeMap::new(),
        }
    }

    pub(crate) fn after_commit(
        &mut self,
        committed: &TopicPartitionList,
        repartition: &std::collections::BTreeSet<String>,
    ) {
        for elem in committed.elements() {
            if let (true, Offset::Offset(o)) = (repartition.contains(elem.topic()), elem.offset()) {
                self.pending
                    .insert(TopicPartition::new(elem.topic(), elem.partition()), o);
            }
        }
        if self.pending.is_empty() || self.last.elapsed() < self.interval {
            return;
        }
        let Some(admin) = self.admin.clone() else {
            return;
        };
        self.last = std::time::Instant::now();
        let mut tpl = TopicPartitionList::new();
        for (tp, offset) in std::mem::take(&mut self.pending) {
            let _ = tpl.add_partition_offset(&tp.topic, tp.partition, Offset::Offset(offset));
        }
        // The admin call completes on librdkafka's thread; waiting for it must not stall
        // processing, and a failed purge only delays disk reclamation.
        std::thread::spawn(move || {
            let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            match futures::executor::block_on(admin.delete_records(&tpl, &options)) {
                Ok(_) => tracing::debug!(partitions = tpl.count(), "purged repartition topics"),
                Err(e) => tracing::warn!(error = %e, "purging repartition topics failed"),
            }
        });
    }
}
