//! The Open Inference Protocol's tensors, typed: [`Datatype`], and [`TensorData`], one buffer
//! of one element type. Every way a tensor arrives decodes into it directly:
//! - JSON `data`, flat or nested, read by a visitor into one buffer ([`TensorData`]'s
//!   `Deserialize`), with no `serde_json::Value` per number;
//! - the binary tensor extension's little-endian bytes ([`TensorData::from_le_bytes`]), over
//!   HTTP, and gRPC's `raw_input_contents`;
//! - gRPC's typed `contents` (serve builds the buffer from the field that holds them).
//!
//! JSON carries decimal numbers, so JSON `data` is read as FP64 whatever the datatype names;
//! binary data and gRPC contents keep their element type until [`TensorData::numbers`].

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A tensor's element type, by the protocol's names (`"FP64"`, `"BYTES"`, …), which
/// [`Datatype::name`] holds once for parsing, JSON and gRPC alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Datatype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    /// The protocol's name.
    pub fn name(self) -> &'static str {
        match self {
            Datatype::Bool => "BOOL",
            Datatype::Uint8 => "UINT8",
            Datatype::Uint16 => "UINT16",
            Datatype::Uint32 => "UINT32",
            Datatype::Uint64 => "UINT64",
            Datatype::Int8 => "INT8",
            Datatype::Int16 => "INT16",
            Datatype::Int32 => "INT32",
            Datatype::Int64 => "INT64",
            Datatype::Fp16 => "FP16",
            Datatype::Fp32 => "FP32",
            Datatype::Fp64 => "FP64",
            Datatype::Bytes => "BYTES",
        }
    }

    /// Every datatype, in the protocol's order.
    pub const ALL: [Datatype; 13] = [
        Datatype::Bool,
        Datatype::Uint8,
        Datatype::Uint16,
        Datatype::Uint32,
        Datatype::Uint64,
        Datatype::Int8,
        Datatype::Int16,
        Datatype::Int32,
        Datatype::Int64,
        Datatype::Fp16,
        Datatype::Fp32,
        Datatype::Fp64,
        Datatype::Bytes,
    ];

    /// The datatype a protocol name names (gRPC carries it as a plain string).
    pub fn parse(name: &str) -> Option<Datatype> {
        Datatype::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Whether its values are numbers a model takes as features (BOOL is not one).
    pub fn is_number(self) -> bool {
        !matches!(self, Datatype::Bool | Datatype::Bytes)
    }
}

impl fmt::Display for Datatype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Datatype {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A datatype read from its name as the JSON holds it, with no copy of the name.
impl<'de> Deserialize<'de> for Datatype {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Datatype, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = Datatype;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a datatype's name, such as FP64 or BYTES")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<Datatype, E> {
                Datatype::parse(name).ok_or_else(|| {
                    let names: Vec<&str> = Datatype::ALL.iter().map(|d| d.name()).collect();
                    E::custom(format_args!(
                        "unknown datatype {name:?}, expected one of {}",
                        names.join(", ")
                    ))
                })
            }
        }
        d.deserialize_str(Name)
    }
}

/// A tensor's values, row-major, in one buffer of their element type.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Fp64(Vec<f64>),
    Fp32(Vec<f32>),
    Int64(Vec<i64>),
    Int32(Vec<i32>),
    Int16(Vec<i16>),
    Int8(Vec<i8>),
    Uint64(Vec<u64>),
    Uint32(Vec<u32>),
    Uint16(Vec<u16>),
    Uint8(Vec<u8>),
    Bool(Vec<bool>),
    Bytes(Vec<String>),
}

impl Default for TensorData {
    /// No values: a tensor whose data follows as binary data, or an empty one.
    fn default() -> Self {
        TensorData::Fp64(Vec::new())
    }
}

/// Why bytes or JSON do not make a tensor of the datatype they are sent as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TensorError(pub String);

impl TensorData {
    /// How many values it holds.
    pub fn len(&self) -> usize {
        match self {
            TensorData::Fp64(v) => v.len(),
            TensorData::Fp32(v) => v.len(),
            TensorData::Int64(v) => v.len(),
            TensorData::Int32(v) => v.len(),
            TensorData::Int16(v) => v.len(),
            TensorData::Int8(v) => v.len(),
            TensorData::Uint64(v) => v.len(),
            TensorData::Uint32(v) => v.len(),
            TensorData::Uint16(v) => v.len(),
            TensorData::Uint8(v) => v.len(),
            TensorData::Bool(v) => v.len(),
            TensorData::Bytes(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its values as the numbers a model takes (FP64 moved, not copied); for text or
    /// booleans, the first value, to name in an error.
    pub fn numbers(self) -> Result<Vec<f64>, String> {
        fn widen<T: Into<f64>>(v: Vec<T>) -> Vec<f64> {
            v.into_iter().map(Into::into).collect()
        }
        // i64 and u64 have no lossless `Into<f64>`; their values are read as the nearest f64.
        Ok(match self {
            TensorData::Fp64(v) => v,
            TensorData::Fp32(v) => widen(v),
            TensorData::Int64(v) => v.into_iter().map(|x| x as f64).collect(),
            TensorData::Int32(v) => widen(v),
            TensorData::Int16(v) => widen(v),
            TensorData::Int8(v) => widen(v),
            TensorData::Uint64(v) => v.into_iter().map(|x| x as f64).collect(),
            TensorData::Uint32(v) => widen(v),
            TensorData::Uint16(v) => widen(v),
            TensorData::Uint8(v) => widen(v),
            TensorData::Bool(v) if v.is_empty() => Vec::new(),
            TensorData::Bytes(v) if v.is_empty() => Vec::new(),
            other => return Err(other.first_as_text()),
        })
    }

    /// Its values as text, for a BYTES tensor; otherwise the first value, to name in an error.
    pub fn texts(self) -> Result<Vec<String>, String> {
        match self {
            TensorData::Bytes(v) => Ok(v),
            other if other.is_empty() => Ok(Vec::new()),
            other => Err(other.first_as_text()),
        }
    }

    /// Its first value as JSON would write it, to name in an error.
    fn first_as_text(self) -> String {
        match self {
            TensorData::Bytes(v) => v.first().map(|t| format!("{t:?}")),
            TensorData::Bool(v) => v.first().map(bool::to_string),
            numbers => numbers.numbers().ok().and_then(|v| v.first().map(f64::to_string)),
        }
        .unwrap_or_default()
    }

    /// `count` values of `datatype` from the binary tensor extension's little-endian bytes
    /// (BYTES: each element a u32 length, then that many bytes of UTF-8 text).
    pub fn from_le_bytes(
        datatype: Datatype,
        bytes: &[u8],
        count: usize,
    ) -> Result<TensorData, TensorError> {
        fn fixed<const N: usize, T>(
            bytes: &[u8],
            count: usize,
            datatype: Datatype,
            read: impl Fn([u8; N]) -> T,
        ) -> Result<Vec<T>, TensorError> {
            if Some(bytes.len()) != count.checked_mul(N) {
                return Err(TensorError(format!(
                    "{} bytes of {datatype} for {count} values (need {})",
                    bytes.len(),
                    count.saturating_mul(N)
                )));
            }
            Ok(bytes.chunks_exact(N).map(|b| read(b.try_into().expect("N bytes"))).collect())
        }
        let (b, n, t) = (bytes, count, datatype);
        Ok(match datatype {
            Datatype::Fp64 => TensorData::Fp64(fixed(b, n, t, f64::from_le_bytes)?),
            Datatype::Fp32 => TensorData::Fp32(fixed(b, n, t, f32::from_le_bytes)?),
            Datatype::Int64 => TensorData::Int64(fixed(b, n, t, i64::from_le_bytes)?),
            Datatype::Int32 => TensorData::Int32(fixed(b, n, t, i32::from_le_bytes)?),
            Datatype::Int16 => TensorData::Int16(fixed(b, n, t, i16::from_le_bytes)?),
            Datatype::Int8 => TensorData::Int8(fixed(b, n, t, i8::from_le_bytes)?),
            Datatype::Uint64 => TensorData::Uint64(fixed(b, n, t, u64::from_le_bytes)?),
            Datatype::Uint32 => TensorData::Uint32(fixed(b, n, t, u32::from_le_bytes)?),
            Datatype::Uint16 => TensorData::Uint16(fixed(b, n, t, u16::from_le_bytes)?),
            Datatype::Uint8 => TensorData::Uint8(fixed(b, n, t, u8::from_le_bytes)?),
            Datatype::Bool => TensorData::Bool(fixed(b, n, t, |[x]: [u8; 1]| x != 0)?),
            Datatype::Bytes => TensorData::Bytes(length_prefixed_texts(bytes, count)?),
            Datatype::Fp16 => {
                return Err(TensorError(format!(
                    "datatype {t} is not one binary data can carry here"
                )));
            }
        })
    }
}

/// BYTES elements as the binary extension sends them: a u32 length, then the bytes.
fn length_prefixed_texts(bytes: &[u8], count: usize) -> Result<Vec<String>, TensorError> {
    // Each element takes 4 bytes at least: a count beyond that is a lie, not a reservation.
    let mut texts = Vec::with_capacity(count.min(bytes.len() / 4));
    let mut rest = bytes;
    while rest.len() >= 4 {
        let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let element = rest
            .get(4..4 + n)
            .ok_or_else(|| TensorError("a BYTES element runs past the data".into()))?;
        let text = std::str::from_utf8(element)
            .map_err(|_| TensorError("a BYTES element is not UTF-8 text".into()))?;
        texts.push(text.to_string());
        rest = &rest[4 + n..];
    }
    if !rest.is_empty() || texts.len() != count {
        return Err(TensorError(format!("{} BYTES elements for a shape of {count}", texts.len())));
    }
    Ok(texts)
}

impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TensorData::Fp64(v) => v.serialize(s),
            TensorData::Fp32(v) => v.serialize(s),
            TensorData::Int64(v) => v.serialize(s),
            TensorData::Int32(v) => v.serialize(s),
            TensorData::Int16(v) => v.serialize(s),
            TensorData::Int8(v) => v.serialize(s),
            TensorData::Uint64(v) => v.serialize(s),
            TensorData::Uint32(v) => v.serialize(s),
            TensorData::Uint16(v) => v.serialize(s),
            TensorData::Uint8(v) => v.serialize(s),
            TensorData::Bool(v) => v.serialize(s),
            TensorData::Bytes(v) => v.serialize(s),
        }
    }
}

/// How deep JSON `data` may nest: a tensor of rank 4 at most.
const MAX_DEPTH: usize = 4;

/// JSON `data` read straight into one buffer: numbers (as FP64), booleans or text, flat or
/// nested up to [`MAX_DEPTH`]; a scalar is one value. The kind is set by the first value; a
/// value of another kind is kept as the first text or boolean seen, so that the decoder can
/// name it ("data holds \"x\", not a number").
impl<'de> Deserialize<'de> for TensorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TensorData, D::Error> {
        let mut buffer = JsonBuffer::default();
        d.deserialize_any(JsonValues { buffer: &mut buffer, depth: 0 })?;
        if buffer.too_deep {
            return Err(de::Error::custom("data is nested too deeply"));
        }
        Ok(buffer.finish())
    }
}

/// What a JSON `data` has given so far.
#[derive(Default)]
struct JsonBuffer {
    numbers: Vec<f64>,
    texts: Vec<String>,
    bools: Vec<bool>,
    /// An array deeper than [`MAX_DEPTH`] was read. Reading goes on, so that JSON nested past
    /// serde_json's own limit is refused as malformed (400), as it always was.
    too_deep: bool,
}

impl JsonBuffer {
    /// The buffer of the kind the data holds; data of mixed kinds gives the kind that is not
    /// numbers, so the decoder names a value that is not a number.
    fn finish(self) -> TensorData {
        if !self.texts.is_empty() {
            TensorData::Bytes(self.texts)
        } else if !self.bools.is_empty() {
            TensorData::Bool(self.bools)
        } else {
            TensorData::Fp64(self.numbers)
        }
    }
}

/// A visitor of one JSON value of `data` at `depth`, adding what it holds to the buffer.
struct JsonValues<'b> {
    buffer: &'b mut JsonBuffer,
    depth: usize,
}

impl<'de> Visitor<'de> for JsonValues<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("numbers, booleans or text, flat or in nested arrays")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.buffer.numbers.push(v);
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.visit_f64(v as f64)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.buffer.bools.push(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.buffer.texts.push(v.to_string());
        Ok(())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<(), E> {
        self.buffer.texts.push(v);
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::custom("data holds null, not a number"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::custom("data holds an object, not a number"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.buffer.too_deep |= self.depth >= MAX_DEPTH;
        let depth = self.depth + 1;
        while seq.next_element_seed(JsonSeed { buffer: &mut *self.buffer, depth })?.is_some() {}
        Ok(())
    }
}

/// The seed that reads one element of a JSON array into the same buffer.
struct JsonSeed<'b> {
    buffer: &'b mut JsonBuffer,
    depth: usize,
}

impl<'de> de::DeserializeSeed<'de> for JsonSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(JsonValues { buffer: self.buffer, depth: self.depth })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Result<TensorData, serde_json::Error> {
        serde_json::from_str(text)
    }

    #[test]
    fn json_data_flat_or_nested_is_one_buffer() {
        assert_eq!(
            json("[[1, 2.5], [3, -4]]").unwrap(),
            TensorData::Fp64(vec![1.0, 2.5, 3.0, -4.0])
        );
        assert_eq!(json("7").unwrap(), TensorData::Fp64(vec![7.0]));
        assert_eq!(
            json(r#"[["a"], ["b"]]"#).unwrap(),
            TensorData::Bytes(vec!["a".into(), "b".into()])
        );
        assert_eq!(json("[true, false]").unwrap(), TensorData::Bool(vec![true, false]));
        assert!(
            json("[[[[[1]]]]]").unwrap_err().to_string().starts_with("data is nested too deeply")
        );
        assert!(json("[1, null]").unwrap_err().to_string().contains("null"));
        // A value that is not a number is kept to be named.
        assert_eq!(json(r#"[1, "x"]"#).unwrap().numbers(), Err("\"x\"".to_string()));
    }

    #[test]
    fn binary_data_keeps_its_element_type_and_counts_its_bytes() {
        let bytes: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let t = TensorData::from_le_bytes(Datatype::Fp32, &bytes, 2).unwrap();
        assert_eq!(t, TensorData::Fp32(vec![1.5, -2.0]));
        assert_eq!(t.numbers().unwrap(), vec![1.5, -2.0]);
        let short = TensorData::from_le_bytes(Datatype::Fp64, &bytes, 2).unwrap_err();
        assert_eq!(short.0, "8 bytes of FP64 for 2 values (need 16)");
        let text = [&3u32.to_le_bytes()[..], b"abc"].concat();
        assert_eq!(
            TensorData::from_le_bytes(Datatype::Bytes, &text, 1).unwrap(),
            TensorData::Bytes(vec!["abc".into()])
        );
        assert!(TensorData::from_le_bytes(Datatype::Bytes, &text[..5], 1).is_err());
        assert!(TensorData::from_le_bytes(Datatype::Bytes, &text, 2).is_err());
    }

    #[test]
    fn datatypes_go_by_the_protocol_s_names() {
        assert_eq!(Datatype::parse("FP64"), Some(Datatype::Fp64));
        assert_eq!(Datatype::parse("fp64"), None);
        assert_eq!(serde_json::to_string(&Datatype::Uint16).unwrap(), "\"UINT16\"");
        assert_eq!(serde_json::from_str::<Datatype>("\"BYTES\"").unwrap(), Datatype::Bytes);
        let unknown = serde_json::from_str::<Datatype>("\"FP8\"").unwrap_err().to_string();
        assert!(unknown.starts_with("unknown datatype \"FP8\", expected one of BOOL"), "{unknown}");
        assert!(Datatype::Int8.is_number() && !Datatype::Bool.is_number());
    }
}
