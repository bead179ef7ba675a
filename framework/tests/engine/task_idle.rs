//! `max_task_idle` and explicit exclusion from time synchronisation.

use super::*;

fn merged_ab(idle: Option<Duration>) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    let a = builder.stream("a", Consumed::with(StringSerde, I64Serde));
    let b = builder.stream("b", Consumed::with(StringSerde, I64Serde));
    a.merge(&b).to("out", Produced::default());
    TopologyTestDriver::new(builder.build().unwrap(), config().max_task_idle(idle)).unwrap()
}

/// Timestamps of the unread output records.
fn out_timestamps(driver: &TopologyTestDriver) -> Vec<i64> {
    driver
        .output_topic("out", StringSerde, I64Serde)
        .read_records()
        .into_iter()
        .map(|r| r.timestamp)
        .collect()
}

#[test]
fn task_waits_max_task_idle_for_an_empty_partition() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);
    let b = driver.input_topic("b", StringSerde, I64Serde);

    a.pipe(s("k"), 0, 20).unwrap();
    a.pipe(s("k"), 0, 30).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    // b gets data: the older record goes first, then the task waits for b again.
    b.pipe(s("k"), 0, 10).unwrap();
    assert_eq!(out_timestamps(&driver), vec![10]);
    b.pipe(s("k"), 0, 25).unwrap();
    assert_eq!(out_timestamps(&driver), vec![20, 25]);

    // 30 on a waits until b has been empty for the full 100 ms.
    driver
        .advance_wall_clock(Duration::from_millis(99))
        .unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(out_timestamps(&driver), vec![30]);
    assert_eq!(driver.stream_time(task(0, 0)), Some(30));
}

#[test]
fn idle_wait_is_measured_from_when_the_partition_became_empty() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);
    driver.advance_wall_clock(Duration::from_secs(5)).unwrap();
    // Time that passed before there was anything to wait for does not count.
    a.pipe(s("k"), 0, 1).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(50))
        .unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(50))
        .unwrap();
    assert_eq!(out_timestamps(&driver), vec![1]);
}

#[test]
fn no_idle_wait_without_max_task_idle() {
    let driver = merged_ab(None);
    driver
        .input_topic("a", StringSerde, I64Serde)
        .pipe(s("k"), 0, 20)
        .unwrap();
    assert_eq!(out_timestamps(&driver), vec![20]);
}

#[test]
fn excluded_partition_is_not_waited_for_until_included_again() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);

    a.pipe(s("k"), 0, 10).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    // Excluding b releases the record already waiting for it.
    driver.set_excluded("b", 0, true).unwrap();
    assert_eq!(out_timestamps(&driver), vec![10]);
    a.pipe(s("k"), 0, 20).unwrap();
    assert_eq!(out_timestamps(&driver), vec![20]);

    // Including it again restores waiting.
    driver.set_excluded("b", 0, false).unwrap();
    a.pipe(s("k"), 0, 30).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver
        .advance_wall_clock(Duration::from_millis(100))
        .unwrap();
    assert_eq!(out_timestamps(&driver), vec![30]);

    assert!(matches!(
        driver.set_excluded("nope", 0, true),
        Err(StreamsError::MissingTopic(_))
    ));
}

#[test]
fn excluded_partition_rejoins_when_a_record_arrives_on_it() {
    let driver = merged_ab(Some(Duration::from_millis(100)));
    let a = driver.input_topic("a", StringSerde, I64Serde);
    let b = driver.input_topic("b", StringSerde, I64Serde);
    driver.set_excluded("b", 0, true).unwrap();
    a.pipe(s("k"), 0, 10).unwrap();
    assert_eq!(out_timestamps(&driver), vec![10]);

    // b is back in time synchronisation. Its record waits for a (empty, not excluded) like
    // any record; once a has data, 30 goes first and 40 then waits for b.
    b.pipe(s("k"), 0, 30).unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    a.pipe(s("k"), 0, 40).unwrap();
    assert_eq!(out_timestamps(&driver), vec![30]);
    driver
        .advance_wall_clock(Duration::from_millis(99))
        .unwrap();
    assert_eq!(out_timestamps(&driver), Vec::<i64>::new());
    driver.advance_wall_clock(Duration::from_millis(1)).unwrap();
    assert_eq!(out_timestamps(&driver), vec![40]);
}
