//! Canonical bytes of a serde value, for hashing free parameters into a cache key.
//!
//! Every value starts with one tag byte naming its serde data-model kind, so `1u32` and
//! `1u64` differ. Integers are fixed-width little-endian; strings, bytes and names carry a
//! `u64` little-endian length; compounds carry the number of elements actually written.
//! Container names, variant names and indices and field names are all included, so a
//! rename changes the bytes. The encoding is prefix-free: no encoding is a proper prefix
//! of another, so a sequence of encodings is never ambiguous.
//!
//! Map entries are sorted by the bytes of their encoded keys, so a `HashMap` and a
//! `BTreeMap` with the same content give the same bytes. Every NaN is written as one
//! canonical NaN; `-0.0` and `0.0` stay distinct. The serializer is not human-readable,
//! so types with two forms (addresses, UUIDs, ...) write their compact one.
//!
//! These bytes feed cache keys: any change to the encoding invalidates every cache, which
//! is why a test pins an exact vector.

use serde::Serialize;
use serde::ser::{
    self, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant,
};

/// Canonical bytes of `value`: equal values give equal bytes on every machine and run.
///
/// # Errors
///
/// Fails when the value's `Serialize` impl reports an error, when a map has two keys
/// with the same canonical bytes, or when a map is serialized out of protocol.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    value.serialize(Canon(&mut out))?;
    Ok(out)
}

/// Why a value has no canonical bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CanonicalError {
    /// An error raised by the value's own `Serialize` impl.
    #[error("{0}")]
    Custom(String),
    /// Two entries of one map have keys with the same canonical bytes.
    #[error("map has two keys with the same canonical bytes")]
    DuplicateMapKey,
    /// A map value was serialized without a key before it, or a key without a value.
    #[error("map key and value are not paired")]
    UnpairedMapEntry,
    /// A length does not fit in 64 bits.
    #[error("length {0} does not fit in 64 bits")]
    TooLong(usize),
}

impl ser::Error for CanonicalError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self::Custom(msg.to_string())
    }
}

type Res<T = ()> = Result<T, CanonicalError>;

// Every NaN is written as the quiet NaN with an empty payload: NaNs differ only in bits
// that arithmetic does not define, so they are one parameter value to a user.
const NAN_F32: u32 = 0x7fc0_0000;
const NAN_F64: u64 = 0x7ff8_0000_0000_0000;

/// One tag byte per serde data-model kind. The values are part of the format: never
/// reorder or reuse them.
#[repr(u8)]
#[rustfmt::skip]
enum Tag {
    Bool = 0x01, I8 = 0x02, I16 = 0x03, I32 = 0x04, I64 = 0x05, I128 = 0x06,
    U8 = 0x07, U16 = 0x08, U32 = 0x09, U64 = 0x0a, U128 = 0x0b,
    F32 = 0x0c, F64 = 0x0d, Char = 0x0e, Str = 0x0f, Bytes = 0x10,
    None = 0x11, Some = 0x12, Unit = 0x13, UnitStruct = 0x14, UnitVariant = 0x15,
    NewtypeStruct = 0x16, NewtypeVariant = 0x17,
    Seq = 0x18, Tuple = 0x19, TupleStruct = 0x1a, TupleVariant = 0x1b,
    Map = 0x1c, Struct = 0x1d, StructVariant = 0x1e,
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Res {
    let len = u64::try_from(len).map_err(|_| CanonicalError::TooLong(len))?;
    out.extend_from_slice(&len.to_le_bytes());
    Ok(())
}

fn put_sized(out: &mut Vec<u8>, bytes: &[u8]) -> Res {
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends a variant's enum name, index and name.
fn put_variant(out: &mut Vec<u8>, name: &str, index: u32, variant: &str) -> Res {
    put_sized(out, name.as_bytes())?;
    out.extend_from_slice(&index.to_le_bytes());
    put_sized(out, variant.as_bytes())
}

/// The serializer: writes one value's canonical bytes at the end of its buffer.
struct Canon<'a>(&'a mut Vec<u8>);

impl<'a> Canon<'a> {
    fn sized(self, tag: Tag, payload: &[u8]) -> Res {
        self.0.push(tag as u8);
        put_sized(self.0, payload)
    }

    /// Writes a tag and a variant header, and hands back the serializer for what follows.
    fn variant(self, tag: Tag, name: &str, index: u32, variant: &str) -> Res<Self> {
        self.0.push(tag as u8);
        put_variant(self.0, name, index, variant)?;
        Ok(self)
    }

    /// Starts a compound after its header: a tag, then a name when there is one.
    fn compound(self, tag: Tag, name: Option<&str>) -> Res<Compound<'a>> {
        self.0.push(tag as u8);
        if let Some(name) = name {
            put_sized(self.0, name.as_bytes())?;
        }
        Ok(self.body())
    }

    fn body(self) -> Compound<'a> {
        Compound {
            out: self.0,
            body: Vec::new(),
            count: 0,
        }
    }
}

/// Defines `serialize_*` methods for values written as a tag and a fixed-width payload.
macro_rules! fixed {
    ($($method:ident($($v:ident: $ty:ty)?) => $tag:ident, $payload:expr;)*) => {$(
        fn $method(self $(, $v: $ty)?) -> Res {
            self.0.push(Tag::$tag as u8);
            self.0.extend_from_slice(&$payload);
            Ok(())
        }
    )*};
}

impl<'a> ser::Serializer for Canon<'a> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = MapCompound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fixed! {
        serialize_bool(v: bool) => Bool, [u8::from(v)];
        serialize_i8(v: i8) => I8, v.to_le_bytes();
        serialize_i16(v: i16) => I16, v.to_le_bytes();
        serialize_i32(v: i32) => I32, v.to_le_bytes();
        serialize_i64(v: i64) => I64, v.to_le_bytes();
        serialize_i128(v: i128) => I128, v.to_le_bytes();
        serialize_u8(v: u8) => U8, v.to_le_bytes();
        serialize_u16(v: u16) => U16, v.to_le_bytes();
        serialize_u32(v: u32) => U32, v.to_le_bytes();
        serialize_u64(v: u64) => U64, v.to_le_bytes();
        serialize_u128(v: u128) => U128, v.to_le_bytes();
        serialize_f32(v: f32) => F32, if v.is_nan() { NAN_F32 } else { v.to_bits() }.to_le_bytes();
        serialize_f64(v: f64) => F64, if v.is_nan() { NAN_F64 } else { v.to_bits() }.to_le_bytes();
        serialize_char(v: char) => Char, u32::from(v).to_le_bytes();
        serialize_none() => None, [];
        serialize_unit() => Unit, [];
    }

    fn serialize_str(self, v: &str) -> Res {
        self.sized(Tag::Str, v.as_bytes())
    }

    fn serialize_bytes(self, v: &[u8]) -> Res {
        self.sized(Tag::Bytes, v)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Res {
        self.0.push(Tag::Some as u8);
        value.serialize(self)
    }

    fn serialize_unit_struct(self, name: &'static str) -> Res {
        self.sized(Tag::UnitStruct, name.as_bytes())
    }

    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Res {
        self.variant(Tag::UnitVariant, name, index, variant)?;
        Ok(())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Res {
        self.0.push(Tag::NewtypeStruct as u8);
        put_sized(self.0, name.as_bytes())?;
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Res {
        value.serialize(self.variant(Tag::NewtypeVariant, name, index, variant)?)
    }

    fn serialize_seq(self, _len: Option<usize>) -> Res<Compound<'a>> {
        self.compound(Tag::Seq, None)
    }

    fn serialize_tuple(self, _len: usize) -> Res<Compound<'a>> {
        self.compound(Tag::Tuple, None)
    }

    fn serialize_tuple_struct(self, name: &'static str, _len: usize) -> Res<Compound<'a>> {
        self.compound(Tag::TupleStruct, Some(name))
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Res<Compound<'a>> {
        let header = self.variant(Tag::TupleVariant, name, index, variant)?;
        Ok(header.body())
    }

    fn serialize_map(self, _len: Option<usize>) -> Res<MapCompound<'a>> {
        self.0.push(Tag::Map as u8);
        Ok(MapCompound {
            out: self.0,
            entries: Vec::new(),
            key: None,
        })
    }

    fn serialize_struct(self, name: &'static str, _len: usize) -> Res<Compound<'a>> {
        self.compound(Tag::Struct, Some(name))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Res<Compound<'a>> {
        let header = self.variant(Tag::StructVariant, name, index, variant)?;
        Ok(header.body())
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// A sequence, tuple or struct body. Elements are buffered so that the count written
/// before them is the number actually written (unknown lengths, skipped fields).
struct Compound<'a> {
    out: &'a mut Vec<u8>,
    body: Vec<u8>,
    count: usize,
}

impl Compound<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        value.serialize(Canon(&mut self.body))?;
        self.count += 1;
        Ok(())
    }

    fn finish(self) -> Res {
        put_len(self.out, self.count)?;
        self.out.extend_from_slice(&self.body);
        Ok(())
    }
}

/// Implements serde's compound traits on [`Compound`]; named fields write their name first.
macro_rules! compound {
    ($($trait:ident::$method:ident($($key:ident)?)),* $(,)?) => {$(
        impl $trait for Compound<'_> {
            type Ok = ();
            type Error = CanonicalError;

            fn $method<T: Serialize + ?Sized>(&mut self, $($key: &'static str,)? value: &T) -> Res {
                $(put_sized(&mut self.body, $key.as_bytes())?;)?
                self.element(value)
            }

            fn end(self) -> Res {
                self.finish()
            }
        }
    )*};
}

compound! {
    SerializeSeq::serialize_element(),
    SerializeTuple::serialize_element(),
    SerializeTupleStruct::serialize_field(),
    SerializeTupleVariant::serialize_field(),
    SerializeStruct::serialize_field(key),
    SerializeStructVariant::serialize_field(key),
}

/// A map body: entries are buffered as encoded `(key, value)` pairs and sorted at the end.
struct MapCompound<'a> {
    out: &'a mut Vec<u8>,
    entries: Vec<(Vec<u8>, Vec<u8>)>,
    key: Option<Vec<u8>>,
}

impl SerializeMap for MapCompound<'_> {
    type Ok = ();
    type Error = CanonicalError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Res {
        match self.key.replace(to_bytes(key)?) {
            None => Ok(()),
            Some(_) => Err(CanonicalError::UnpairedMapEntry),
        }
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Res {
        let key = self.key.take().ok_or(CanonicalError::UnpairedMapEntry)?;
        self.entries.push((key, to_bytes(value)?));
        Ok(())
    }

    fn end(mut self) -> Res {
        if self.key.is_some() {
            return Err(CanonicalError::UnpairedMapEntry);
        }
        // Keys are prefix-free, so sorting their bytes is a total, platform-free order.
        self.entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if self.entries.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(CanonicalError::DuplicateMapKey);
        }
        put_len(self.out, self.entries.len())?;
        for (key, value) in &self.entries {
            self.out.extend_from_slice(key);
            self.out.extend_from_slice(value);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{CanonicalError, to_bytes};
    use proptest::prelude::*;
    use serde::Serialize;
    use serde::ser::SerializeMap;
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Write;

    fn enc<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
        to_bytes(value).unwrap()
    }

    fn all_distinct(encodings: &[Vec<u8>]) {
        for (i, a) in encodings.iter().enumerate() {
            assert!(encodings[i + 1..].iter().all(|b| a != b), "#{i} collides");
        }
    }

    #[test]
    fn pinned_vector() {
        let hex = enc(&(1u8, "a")).iter().fold(String::new(), |mut s, b| {
            write!(s, "{b:02x}").unwrap();
            s
        });
        assert_eq!(hex, "19020000000000000007010f010000000000000061");
    }

    #[test]
    fn maps_ignore_order_and_kind() {
        let (mut a, mut b) = (HashMap::new(), HashMap::new());
        for i in 0..100u32 {
            a.insert(i.to_string(), i);
            b.insert((99 - i).to_string(), 99 - i);
        }
        assert_eq!(enc(&a), enc(&b));
        assert_eq!(enc(&a), enc(&a.into_iter().collect::<BTreeMap<_, _>>()));
    }

    #[test]
    fn kinds_are_tagged() {
        all_distinct(&[enc(&1u32), enc(&1u64), enc(&1i32), enc(&'\u{1}')]);
        let units = [
            enc(&Some(())),
            enc(&()),
            enc(&None::<()>),
            enc(&Some(None::<()>)),
        ];
        all_distinct(&units);
    }

    #[derive(Serialize)]
    struct Point {
        x: u8,
        y: u8,
    }

    #[derive(Serialize)]
    #[serde(rename = "Point")]
    struct Renamed {
        x: u8,
        #[serde(rename = "z")]
        y: u8,
    }

    #[test]
    fn structs_differ_from_tuples_and_renamed_fields() {
        let point = enc(&Point { x: 1, y: 2 });
        all_distinct(&[point, enc(&(1u8, 2u8)), enc(&Renamed { x: 1, y: 2 })]);
    }

    #[test]
    fn encoding_is_prefix_free() {
        all_distinct(&[enc(&("ab", "c")), enc(&("a", "bc"))]);
        all_distinct(&[
            enc(&(vec![1u8], vec![2u8])),
            enc(&(vec![1u8, 2], vec![0u8; 0])),
        ]);
    }

    #[test]
    fn nans_are_normalised_and_zeros_signed() {
        let odd_nan = f64::from_bits(0xfff0_0000_0000_0001);
        assert!(odd_nan.is_nan());
        assert_eq!(enc(&f64::NAN), enc(&odd_nan));
        assert_eq!(enc(&f32::NAN), enc(&-f32::NAN));
        all_distinct(&[enc(&-0.0f64), enc(&0.0f64), enc(&-0.0f32), enc(&0.0f32)]);
    }

    #[derive(Serialize)]
    enum Inner {
        A,
        B(u8),
        C(u8, u8),
        D { v: u8 },
    }

    #[derive(Serialize)]
    enum Outer {
        Wrap(Inner),
        Pair(Inner, Inner),
        Named { inner: Inner },
    }

    #[test]
    fn nested_variants_are_distinct() {
        use {Inner::*, Outer::*};
        let values = [
            Wrap(A),
            Wrap(B(1)),
            Wrap(C(1, 1)),
            Wrap(D { v: 1 }),
            Pair(A, B(1)),
            Pair(B(1), A),
            Named { inner: A },
            Named { inner: D { v: 1 } },
        ];
        all_distinct(&values.iter().map(enc).collect::<Vec<_>>());
    }

    #[derive(Serialize)]
    struct Sparse {
        #[serde(skip_serializing_if = "Option::is_none")]
        a: Option<u8>,
        b: u8,
    }

    #[test]
    fn skipped_fields_are_not_counted() {
        let skipped = enc(&Sparse { a: None, b: 1 });
        assert_ne!(skipped, enc(&Sparse { a: Some(1), b: 1 }));
        // Tag, then the name "Sparse" after its length, then a count of one field.
        assert_eq!(skipped[15..23], 1u64.to_le_bytes());
    }

    /// Serializes as a map whose two keys are equal.
    struct Duplicated;

    impl Serialize for Duplicated {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(None)?;
            map.serialize_entry("k", &1)?;
            map.serialize_entry("k", &2)?;
            map.end()
        }
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let result = to_bytes(&Duplicated);
        assert!(matches!(result, Err(CanonicalError::DuplicateMapKey)));
    }

    proptest! {
        #[test]
        fn maps_agree(pairs in prop::collection::vec((".{0,8}", any::<i64>()), 0..32)) {
            let hash: HashMap<_, _> = pairs.iter().cloned().collect();
            let tree: BTreeMap<_, _> = pairs.into_iter().collect();
            prop_assert_eq!(enc(&hash), enc(&tree));
        }

        // Small alphabets make near-collisions such as ("ab", [1]) vs ("a", [1]) likely.
        #[test]
        fn distinct_values_give_distinct_bytes(
            a in ("[ab]{0,3}", prop::collection::vec(0u32..3, 0..3)),
            b in ("[ab]{0,3}", prop::collection::vec(0u32..3, 0..3)),
        ) {
            prop_assume!(a != b);
            prop_assert_ne!(enc(&a), enc(&b));
        }
    }
}
