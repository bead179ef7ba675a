//! Typed views through serdes.

use crate::common::{Backend, Memory};
use streamtime_state::*;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Total {
    count: u64,
    names: Vec<String>,
}

contract_tests!(typed_stores_round_trip_values,);

fn typed_stores_round_trip_values<B: Backend>(b: &B) {
    let mut kv = TypedKeyValueStore::new(b.kv("kv"), StringSerde, BincodeSerde::<Total>::new());
    let t = Total {
        count: 2,
        names: vec!["a".into(), "b".into()],
    };
    kv.put(&"x".to_owned(), &t, 0).unwrap();
    kv.put(&"y".to_owned(), &t, 0).unwrap();
    kv.delete(&"y".to_owned(), 0).unwrap();
    assert_eq!(kv.get(&"x".to_owned()).unwrap(), Some(t.clone()));
    let all: Vec<(String, Total)> = kv.all().collect::<Result<_, _>>().unwrap();
    assert_eq!(all, vec![("x".to_owned(), t.clone())]);
    let some: Vec<(String, Total)> = kv
        .range(&"a".to_owned(), &"x".to_owned())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(some.len(), 1);

    let mut w = TypedWindowStore::new(
        b.window("w", WindowStoreConfig::new(3_600_000)),
        StringSerde,
        BincodeSerde::<i64>::new(),
    );
    w.put(&"k".to_owned(), 1_000, &-5, 1_000).unwrap();
    assert_eq!(w.get(&"k".to_owned(), 1_000).unwrap(), Some(-5));
    let all: Vec<(String, i64, i64)> = w.fetch_all(0, i64::MAX).collect::<Result<_, _>>().unwrap();
    assert_eq!(all, vec![("k".to_owned(), 1_000, -5)]);

    let mut s = TypedSessionStore::new(
        b.session("s", 3_600_000),
        StringSerde,
        BincodeSerde::<u32>::new(),
    );
    s.put(&"k".to_owned(), 0, 10, &7, 10).unwrap();
    let found: Vec<(i64, i64, u32)> = s
        .fetch(&"k".to_owned())
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(found, vec![(0, 10, 7)]);
    s.remove(&"k".to_owned(), 0, 10, 11).unwrap();
    assert_eq!(s.fetch_session(&"k".to_owned(), 0, 10).unwrap(), None);
}

#[test]
fn undecodable_bytes_are_serde_errors() {
    let mut raw = Memory.kv("kv");
    raw.put(b"k", &[0xff, 0xff, 0xff], 0).unwrap();
    raw.put(b"two", &[1, 2], 0).unwrap();
    let typed = TypedKeyValueStore::new(raw, BytesSerde, BincodeSerde::<u8>::new());
    let err = typed.get(&b"k".to_vec()).unwrap_err();
    assert!(matches!(err, StateError::Serde { .. }), "{err}");
    let err = typed.get(&b"two".to_vec()).unwrap_err();
    assert!(err.to_string().contains("trailing bytes"), "{err}");
    assert!(StringSerde.decode(&[0xc3]).is_err());
}
