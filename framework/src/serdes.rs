//! Serialization of keys and values: the [`Serde`] trait and built-in serdes.
//!
//! ```
//! use streamtime::serdes::{Serde, StringSerde, I64Serde};
//! let mut buf = Vec::new();
//! I64Serde.serialize(&-2, &mut buf).unwrap();
//! assert_eq!(buf, (-2_i64).to_be_bytes());
//! assert_eq!(StringSerde.deserialize(b"hi").unwrap(), "hi");
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Why a key or value could not be (de)serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerdeError(pub String);

impl fmt::Display for SerdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerdeError {}

impl SerdeError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        SerdeError(message.into())
    }
}

/// Converts values of `T` to and from bytes.
///
/// Kafka keys and values may be null. A serde that has a meaning for null overrides
/// [`Serde::null_value`] and [`Serde::is_null`]; the others reject null input with an error,
/// which the deserialization error policy then handles.
pub trait Serde<T>: Send + Sync + 'static {
    /// Appends the bytes of `value` to `out`.
    fn serialize(&self, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError>;

    /// Reads a value from `bytes`.
    fn deserialize(&self, bytes: &[u8]) -> Result<T, SerdeError>;

    /// Reads a value from owned `bytes`, which it may keep instead of copying; on failure it
    /// hands them back (a dead-letter record needs the original bytes).
    ///
    /// ```
    /// use streamtime::serdes::{BytesSerde, Serde, StringSerde};
    /// assert_eq!(BytesSerde.deserialize_owned(vec![1, 2]).unwrap(), vec![1, 2]);
    /// let (_, bytes) = StringSerde.deserialize_owned(vec![0xff]).unwrap_err();
    /// assert_eq!(bytes, vec![0xff]);
    /// ```
    fn deserialize_owned(&self, bytes: Vec<u8>) -> Result<T, (SerdeError, Vec<u8>)> {
        self.deserialize(&bytes).map_err(|e| (e, bytes))
    }

    /// The value a null key or value stands for.
    fn null_value(&self) -> Result<T, SerdeError> {
        Err(SerdeError::new("null is not a valid value for this serde"))
    }

    /// True when `value` is written as null (a tombstone) rather than as bytes.
    fn is_null(&self, _value: &T) -> bool {
        false
    }
}

/// A shareable serde handle.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

/// A shared serde is a serde, so operators can hand theirs on without wrapping.
impl<T: 'static> Serde<T> for Arc<dyn Serde<T>> {
    fn serialize(&self, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        (**self).serialize(value, out)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        (**self).deserialize(bytes)
    }
    fn deserialize_owned(&self, bytes: Vec<u8>) -> Result<T, (SerdeError, Vec<u8>)> {
        (**self).deserialize_owned(bytes)
    }
    fn null_value(&self) -> Result<T, SerdeError> {
        (**self).null_value()
    }
    fn is_null(&self, value: &T) -> bool {
        (**self).is_null(value)
    }
}

/// Serializes `value` to owned bytes, `None` when the serde writes it as null.
pub fn to_bytes<T: 'static>(
    serde: &dyn Serde<T>,
    value: &T,
) -> Result<Option<Vec<u8>>, SerdeError> {
    if serde.is_null(value) {
        return Ok(None);
    }
    let mut out = Vec::new();
    serde.serialize(value, &mut out)?;
    Ok(Some(out))
}

/// Deserializes possibly-null bytes.
pub fn from_bytes<T: 'static>(serde: &dyn Serde<T>, bytes: Option<&[u8]>) -> Result<T, SerdeError> {
    match bytes {
        Some(b) => serde.deserialize(b),
        None => serde.null_value(),
    }
}

/// Raw bytes, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, value: &Vec<u8>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        out.extend_from_slice(value);
        Ok(())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<u8>, SerdeError> {
        Ok(bytes.to_vec())
    }
    fn deserialize_owned(&self, bytes: Vec<u8>) -> Result<Vec<u8>, (SerdeError, Vec<u8>)> {
        Ok(bytes)
    }
}

/// UTF-8 strings.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, value: &String, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        out.extend_from_slice(value.as_bytes());
        Ok(())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<String, SerdeError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|e| SerdeError::new(format!("invalid UTF-8: {e}")))
    }
    fn deserialize_owned(&self, bytes: Vec<u8>) -> Result<String, (SerdeError, Vec<u8>)> {
        String::from_utf8(bytes).map_err(|e| {
            let error = SerdeError::new(format!("invalid UTF-8: {}", e.utf8_error()));
            (error, e.into_bytes())
        })
    }
}

/// The unit value: ignores the bytes and writes null, for topics without keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

impl Serde<()> for UnitSerde {
    fn serialize(&self, _value: &(), _out: &mut Vec<u8>) -> Result<(), SerdeError> {
        Ok(())
    }
    fn deserialize(&self, _bytes: &[u8]) -> Result<(), SerdeError> {
        Ok(())
    }
    fn null_value(&self) -> Result<(), SerdeError> {
        Ok(())
    }
    fn is_null(&self, _value: &()) -> bool {
        true
    }
}

macro_rules! big_endian_serde {
    ($(#[$doc:meta] $name:ident => $ty:ty),* $(,)?) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;

        impl Serde<$ty> for $name {
            fn serialize(&self, value: &$ty, out: &mut Vec<u8>) -> Result<(), SerdeError> {
                out.extend_from_slice(&value.to_be_bytes());
                Ok(())
            }
            fn deserialize(&self, bytes: &[u8]) -> Result<$ty, SerdeError> {
                let array = bytes.try_into().map_err(|_| {
                    SerdeError::new(format!(
                        "{} needs {} bytes, got {}",
                        stringify!($ty),
                        std::mem::size_of::<$ty>(),
                        bytes.len()
                    ))
                })?;
                Ok(<$ty>::from_be_bytes(array))
            }
        }
    )*};
}

big_endian_serde! {
    /// `i32`, 4 bytes big-endian (Kafka's IntegerSerde).
    I32Serde => i32,
    /// `i64`, 8 bytes big-endian (Kafka's LongSerde).
    I64Serde => i64,
    /// `u32`, 4 bytes big-endian.
    U32Serde => u32,
    /// `u64`, 8 bytes big-endian.
    U64Serde => u64,
    /// `f64`, 8 bytes big-endian IEEE 754 (Kafka's DoubleSerde).
    F64Serde => f64,
}

/// JSON through `serde_json`.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    /// A JSON serde for `T`.
    pub fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        serde_json::to_writer(out, value).map_err(|e| SerdeError::new(format!("JSON: {e}")))
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        serde_json::from_slice(bytes).map_err(|e| SerdeError::new(format!("JSON: {e}")))
    }
}

/// Compact binary through `bincode` (standard configuration) and `serde`.
pub struct BincodeSerde<T>(PhantomData<fn() -> T>);

impl<T> BincodeSerde<T> {
    /// A bincode serde for `T`.
    pub fn new() -> Self {
        BincodeSerde(PhantomData)
    }
}

impl<T> Default for BincodeSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Serde<T> for BincodeSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, value: &T, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| SerdeError::new(format!("bincode: {e}")))
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T, SerdeError> {
        let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| SerdeError::new(format!("bincode: {e}")))?;
        if used != bytes.len() {
            return Err(SerdeError::new(format!(
                "bincode: {} trailing bytes",
                bytes.len() - used
            )));
        }
        Ok(value)
    }
}

/// `Option<T>` where null stands for `None`, around any serde of `T`.
pub struct OptionSerde<S>(pub S);

impl<T, S: Serde<T>> Serde<Option<T>> for OptionSerde<S> {
    fn serialize(&self, value: &Option<T>, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        match value {
            Some(v) => self.0.serialize(v, out),
            None => Ok(()),
        }
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Option<T>, SerdeError> {
        self.0.deserialize(bytes).map(Some)
    }
    fn null_value(&self) -> Result<Option<T>, SerdeError> {
        Ok(None)
    }
    fn is_null(&self, value: &Option<T>) -> bool {
        value.is_none()
    }
}

/// A value with the timestamp of its latest update: 8 bytes big-endian timestamp, then the
/// value's own bytes.
pub(crate) struct TimestampedSerde<A>(pub Arc<dyn Serde<A>>);

impl<A: 'static> Serde<(A, i64)> for TimestampedSerde<A> {
    fn serialize(&self, value: &(A, i64), out: &mut Vec<u8>) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.1.to_be_bytes());
        self.0.serialize(&value.0, out)
    }

    fn deserialize(&self, bytes: &[u8]) -> Result<(A, i64), SerdeError> {
        if bytes.len() < 8 {
            return Err(SerdeError::new(
                "timestamped value shorter than its 8-byte timestamp",
            ));
        }
        let ts = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        Ok((self.0.deserialize(&bytes[8..])?, ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: PartialEq + fmt::Debug + 'static>(serde: &dyn Serde<T>, value: T) {
        let bytes = to_bytes(serde, &value).unwrap();
        assert_eq!(from_bytes(serde, bytes.as_deref()).unwrap(), value);
    }

    #[test]
    fn built_ins_round_trip() {
        round_trip(&StringSerde, "grüße".to_string());
        round_trip(&BytesSerde, vec![0, 255, 7]);
        round_trip(&I64Serde, i64::MIN);
        round_trip(&I32Serde, -7);
        round_trip(&U64Serde, u64::MAX);
        round_trip(&F64Serde, 2.5);
        round_trip(&JsonSerde::<(String, u32)>::new(), ("a".into(), 3));
        round_trip(&BincodeSerde::<Vec<i64>>::new(), vec![1, -2, 3]);
        round_trip(&OptionSerde(StringSerde), None);
        round_trip(&OptionSerde(StringSerde), Some("x".to_string()));
        round_trip(&UnitSerde, ());
    }

    #[test]
    fn integers_are_big_endian_like_kafka() {
        assert_eq!(to_bytes(&I32Serde, &1).unwrap().unwrap(), vec![0, 0, 0, 1]);
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(I64Serde.deserialize(&[1, 2, 3]).is_err());
        assert!(StringSerde.deserialize(&[0xff, 0xfe]).is_err());
        assert!(JsonSerde::<u32>::new().deserialize(b"{").is_err());
        assert!(BincodeSerde::<u8>::new().deserialize(&[1, 2]).is_err());
        assert!(from_bytes(&StringSerde, None).is_err());
    }
}
