//! Converting typed keys and values to the bytes stores keep: the [`StateSerde`] trait, a
//! bincode implementation for serde types, and a few byte-exact ones.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::StateError;

/// Converts `T` to and from store bytes. The framework adapts its own serdes to this trait;
/// the store crate never needs to know them.
///
/// Ordered scans (key ranges, window and session fetches) compare the *bytes*, so a key
/// serde whose byte order differs from the value order (bincode's variable-length integers,
/// little-endian numbers) makes ranges over those keys meaningless.
///
/// ```
/// use streamtime_state::{StateSerde, StringSerde};
/// let bytes = StringSerde.encode(&"hi".to_owned())?;
/// assert_eq!(StringSerde.decode(&bytes)?, "hi");
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub trait StateSerde<T>: Send + Sync {
    /// The bytes of `value`.
    fn encode(&self, value: &T) -> Result<Vec<u8>, StateError>;

    /// A value from `bytes`.
    fn decode(&self, bytes: &[u8]) -> Result<T, StateError>;
}

/// bincode (standard configuration) for any serde type.
///
/// ```
/// use streamtime_state::{BincodeSerde, StateSerde};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Count { n: u64, last: String }
/// let serde = BincodeSerde::<Count>::new();
/// let c = Count { n: 3, last: "x".into() };
/// assert_eq!(serde.decode(&serde.encode(&c)?)?, c);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
pub struct BincodeSerde<T> {
    // fn() -> T keeps the serde Send + Sync whatever T is: it never holds a T.
    _type: PhantomData<fn() -> T>,
}

impl<T> BincodeSerde<T> {
    /// The serde.
    pub fn new() -> Self {
        BincodeSerde { _type: PhantomData }
    }
}

impl<T> Default for BincodeSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for BincodeSerde<T> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<T> std::fmt::Debug for BincodeSerde<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BincodeSerde<{}>", std::any::type_name::<T>())
    }
}

impl<T: Serialize + DeserializeOwned> StateSerde<T> for BincodeSerde<T> {
    fn encode(&self, value: &T) -> Result<Vec<u8>, StateError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| StateError::serde(std::any::type_name::<T>(), e))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, StateError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| StateError::serde(std::any::type_name::<T>(), e))?;
        // Trailing bytes mean the data was written by a different type or serde.
        if read != bytes.len() {
            return Err(StateError::serde(
                std::any::type_name::<T>(),
                format!("{} trailing bytes after the value", bytes.len() - read),
            ));
        }
        Ok(value)
    }
}

/// Raw bytes, unchanged.
///
/// ```
/// use streamtime_state::{BytesSerde, StateSerde};
/// assert_eq!(BytesSerde.encode(&vec![0xff])?, vec![0xff]);
/// # Ok::<(), streamtime_state::StateError>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl StateSerde<Vec<u8>> for BytesSerde {
    fn encode(&self, value: &Vec<u8>) -> Result<Vec<u8>, StateError> {
        Ok(value.clone())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, StateError> {
        Ok(bytes.to_vec())
    }
}

/// UTF-8 strings, whose byte order is their code point order.
///
/// ```
/// use streamtime_state::{StateSerde, StringSerde};
/// assert!(StringSerde.decode(&[0xff]).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl StateSerde<String> for StringSerde {
    fn encode(&self, value: &String) -> Result<Vec<u8>, StateError> {
        Ok(value.as_bytes().to_vec())
    }

    fn decode(&self, bytes: &[u8]) -> Result<String, StateError> {
        String::from_utf8(bytes.to_vec()).map_err(|e| StateError::serde("String", e))
    }
}
