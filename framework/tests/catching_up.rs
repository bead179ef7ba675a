//! The catching-up flag in the processor context: a processor with a side effect skips it
//! while the task is catching up and resumes when it has caught up; the threshold is
//! validated.

use std::sync::{Arc, Mutex};

use streamtime::serdes::StringSerde;
use streamtime::{
    ProcessResult, Processor, ProcessorContext, Record, StreamsConfig, StreamsError, Topology,
    TopologyTestDriver,
};

/// Forwards every order, and "sends a mail" (the side effect) only for fresh ones.
struct Mailer {
    mails: Arc<Mutex<Vec<String>>>,
}

impl Processor<String, String, String, String> for Mailer {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<String, String>,
        record: Record<String, String>,
    ) -> ProcessResult {
        if !ctx.is_catching_up() {
            self.mails.lock().unwrap().push(record.value.clone());
        }
        ctx.forward(record)
    }
}

#[test]
fn side_effects_are_skipped_while_catching_up() {
    let mails = Arc::new(Mutex::new(Vec::new()));
    let for_processor = mails.clone();
    let mut topology = Topology::new();
    topology
        .add_source("orders", &["orders"], StringSerde, StringSerde)
        .unwrap()
        .add_processor(
            "mailer",
            move || Mailer {
                mails: for_processor.clone(),
            },
            &["orders"],
        )
        .unwrap()
        .add_sink(
            "confirmed",
            "confirmed",
            StringSerde,
            StringSerde,
            &["mailer"],
        )
        .unwrap();
    let driver = TopologyTestDriver::with_partitions(
        topology,
        StreamsConfig::new("mailer-app", "unused"),
        &[("orders", 2)],
    )
    .unwrap();
    let orders = driver.input_topic("orders", StringSerde, StringSerde);
    let confirmed = driver.output_topic("confirmed", StringSerde, StringSerde);

    // Fresh by default.
    orders.pipe("alice".into(), "o1".into(), 1).unwrap();
    // Reprocessing: every task is catching up.
    driver.set_catching_up(true);
    orders.pipe("bob".into(), "o2".into(), 2).unwrap();
    orders.pipe("carol".into(), "o3".into(), 3).unwrap();
    // Caught up again.
    driver.set_catching_up(false);
    orders.pipe("dave".into(), "o4".into(), 4).unwrap();

    let forwarded: Vec<String> = confirmed
        .read_key_values()
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        forwarded,
        vec!["o1", "o2", "o3", "o4"],
        "output never skips"
    );
    assert_eq!(
        *mails.lock().unwrap(),
        vec!["o1", "o4"],
        "mails only when fresh"
    );
}

#[test]
fn a_negative_threshold_is_a_configuration_error() {
    let config = StreamsConfig::new("app", "unused").catching_up_lag_threshold(-1);
    let error = config.validate().unwrap_err();
    assert!(
        matches!(&error, StreamsError::Config(m) if m.contains("catching_up_lag_threshold")),
        "{error}"
    );
    assert!(StreamsConfig::new("app", "unused")
        .catching_up_lag_threshold(0)
        .validate()
        .is_ok());
}
