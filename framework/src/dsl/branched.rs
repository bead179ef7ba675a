//! [`KStream::split`]: routing each record to the first branch whose predicate holds, with
//! named branches ([`Branched`]), an optional default branch, and the map of the branches'
//! streams, as Kafka Streams' `BranchedKStream`.
//!
//! A branch's name is the split's prefix followed by the branch's own name, or by its
//! position (from 1) when it has none; the default branch's position is 0. A branch given a
//! function is in the map as the function's result; a branch given a consumer is not in the
//! map.
//!
//! ```
//! use streamtime::{Branched, Consumed, Produced, StreamsBuilder, StreamsConfig, TopologyTestDriver};
//! use streamtime::serdes::{I64Serde, StringSerde};
//!
//! let builder = StreamsBuilder::new();
//! let branches = builder.stream("payments", Consumed::with(StringSerde, I64Serde))
//!     .split("pay-")
//!     .branch(|_k, cents: &i64| *cents < 0, Branched::as_("refunds"))
//!     .branch(|_k, cents: &i64| *cents > 10_000, Branched::with_function(|s| s.map_values(|c: i64| c / 100), "large"))
//!     .default_branch(Branched::as_("other"));
//! let names: Vec<&str> = branches.keys().map(String::as_str).collect();
//! assert_eq!(names, ["pay-large", "pay-other", "pay-refunds"]);
//! branches["pay-large"].to("large-payments", Produced::with(StringSerde, I64Serde));
//! branches["pay-other"].to("payments-ok", Produced::with(StringSerde, I64Serde));
//!
//! let driver = TopologyTestDriver::new(builder.build().unwrap(), StreamsConfig::new("t", "unused")).unwrap();
//! let input = driver.input_topic("payments", StringSerde, I64Serde);
//! input.pipe("a".into(), 2_000_000, 1).unwrap();
//! input.pipe("b".into(), -5, 2).unwrap();
//! input.pipe("c".into(), 700, 3).unwrap();
//! assert_eq!(driver.output_topic("large-payments", StringSerde, I64Serde).read_key_values(), [("a".into(), 20_000)]);
//! assert_eq!(driver.output_topic("payments-ok", StringSerde, I64Serde).read_key_values(), [("c".into(), 700)]);
//! ```

use std::collections::BTreeMap;

use super::stream::{KStream, Predicate};

/// What a branch of [`KStream::split`] is called and what becomes of its stream.
pub struct Branched<K, V> {
    name: Option<String>,
    then: Then<K, V>,
}

/// A branch's stream mapped to the stream the map holds.
type BranchFunction<K, V> = Box<dyn FnOnce(KStream<K, V>) -> KStream<K, V>>;

enum Then<K, V> {
    Keep,
    Function(BranchFunction<K, V>),
    Consumer(Box<dyn FnOnce(KStream<K, V>)>),
}

impl<K, V> Branched<K, V> {
    /// A branch called `name` whose stream is in the map as it is.
    pub fn as_(name: impl Into<String>) -> Self {
        Branched {
            name: Some(name.into()),
            then: Then::Keep,
        }
    }

    /// A branch called `name` whose stream goes through `f`; the map holds `f`'s result.
    pub fn with_function(
        f: impl FnOnce(KStream<K, V>) -> KStream<K, V> + 'static,
        name: impl Into<String>,
    ) -> Self {
        Branched {
            name: Some(name.into()),
            then: Then::Function(Box::new(f)),
        }
    }

    /// A branch called `name` whose stream is handed to `f` (to write it somewhere, say) and
    /// left out of the map.
    pub fn with_consumer(f: impl FnOnce(KStream<K, V>) + 'static, name: impl Into<String>) -> Self {
        Branched {
            name: Some(name.into()),
            then: Then::Consumer(Box::new(f)),
        }
    }
}

impl<K, V> Default for Branched<K, V> {
    /// An unnamed branch (named by its position), kept in the map as it is.
    fn default() -> Self {
        Branched {
            name: None,
            then: Then::Keep,
        }
    }
}

/// A stream being split into branches; end it with [`BranchedKStream::default_branch`] or
/// [`BranchedKStream::no_default_branch`], which build the branches and return them.
#[must_use = "a split builds its branches only in default_branch or no_default_branch"]
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    prefix: String,
    branches: Vec<(Predicate<K, V>, Branched<K, V>)>,
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Splits the stream into branches named `prefix` + the branch's name (use `""` for
    /// none): each record goes to the first branch whose predicate holds, else to the
    /// default branch if there is one, else nowhere.
    pub fn split(&self, prefix: impl Into<String>) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            prefix: prefix.into(),
            branches: Vec::new(),
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> BranchedKStream<K, V> {
    /// Adds a branch for the records `predicate` accepts (and no earlier branch took).
    pub fn branch(
        mut self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        branched: Branched<K, V>,
    ) -> Self {
        self.branches.push((Box::new(predicate), branched));
        self
    }

    /// Builds the branches, with a last one for the records no predicate accepted, and
    /// returns the branches' streams by name.
    pub fn default_branch(mut self, branched: Branched<K, V>) -> BTreeMap<String, KStream<K, V>> {
        self.branches
            .push((Box::new(|_: &K, _: &V| true), branched));
        self.build(true)
    }

    /// Builds the branches; records no predicate accepts are dropped.
    pub fn no_default_branch(self) -> BTreeMap<String, KStream<K, V>> {
        self.build(false)
    }

    fn build(self, has_default: bool) -> BTreeMap<String, KStream<K, V>> {
        let count = self.branches.len();
        let (predicates, options): (Vec<_>, Vec<_>) = self.branches.into_iter().unzip();
        let streams = self.stream.branch(predicates);
        let mut map = BTreeMap::new();
        for (position, (stream, branched)) in streams.into_iter().zip(options).enumerate() {
            let is_default = has_default && position + 1 == count;
            let name = match (&branched.name, is_default) {
                (Some(name), _) => name.clone(),
                (None, true) => "0".to_string(),
                (None, false) => (position + 1).to_string(),
            };
            let name = format!("{}{name}", self.prefix);
            match branched.then {
                Then::Keep => {
                    map.insert(name, stream);
                }
                Then::Function(f) => {
                    map.insert(name, f(stream));
                }
                Then::Consumer(f) => f(stream),
            }
        }
        map
    }
}
