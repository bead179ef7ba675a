//! Typed views over byte stores: keys and values go through [`crate::StateSerde`]s, the
//! store underneath (with its changelog and cache layers) stays byte-oriented.

mod kv;
mod session;
mod window;

pub use kv::TypedKeyValueStore;
pub use session::{TypedSession, TypedSessionStore};
pub use window::TypedWindowStore;

use std::sync::Arc;

use crate::StateSerde;

/// A shared serde handle, so one serde can serve many stores.
pub type SerdeRef<T> = Arc<dyn StateSerde<T>>;
