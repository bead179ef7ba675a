//! The metadata committed with every input offset: the partition time, so stream time
//! survives a task moving, and the task's processor metadata (observed stream time and how
//! far results were emitted), so a moved task judges lateness and emits as before.

use std::collections::BTreeMap;

/// Commit metadata: the partition time, so stream time survives a task moving, then the
/// task's processor metadata: `streamtime:v1:<partition time>[;<name>=<value>,...]`.
pub(crate) fn encode(partition_time: i64, processor: &BTreeMap<String, i64>) -> String {
    let mut out = format!("streamtime:v1:{partition_time}");
    for (i, (k, v)) in processor.iter().enumerate() {
        out.push(if i == 0 { ';' } else { ',' });
        out.push_str(&format!("{k}={v}"));
    }
    out
}

/// Decoded commit metadata: the partition time and each processor's own metadata.
pub(crate) type Decoded = (i64, BTreeMap<String, i64>);

/// Partition time and processor metadata; `None` for metadata streamtime did not write.
pub(crate) fn decode(metadata: &str) -> Option<Decoded> {
    let rest = metadata.strip_prefix("streamtime:v1:")?;
    let (pt, processor) = rest.split_once(';').unwrap_or((rest, ""));
    let processor = processor
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect::<Option<_>>()?;
    Some((pt.parse().ok()?, processor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_metadata_round_trips_and_tolerates_foreign_values() {
        let none = BTreeMap::new();
        assert_eq!(decode(&encode(1234, &none)), Some((1234, none.clone())));
        assert_eq!(decode(&encode(-1, &none)), Some((-1, none.clone())));
        let processor: BTreeMap<String, i64> = [
            ("3.observed".to_string(), 99),
            ("3.emitted".to_string(), -5),
        ]
        .into();
        assert_eq!(decode(&encode(7, &processor)), Some((7, processor)));
        assert_eq!(decode(""), None);
        assert_eq!(decode("AQAAAXg="), None);
        assert_eq!(decode("streamtime:v1:5;x=notanumber"), None);
    }
}
