//! Arrow data round-trips through `cache = parquet` and `cache = arrow`, over generated
//! schemas (nulls, dictionaries, lists, structs, timestamps with a time zone, decimals)
//! and batches: the same schema, and the same rows in the same order.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, DictionaryArray, Float64Array, Int32Array,
    Int64Array, ListArray, StringArray, StructArray, TimestampMicrosecondArray,
    TimestampNanosecondArray,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use stage_core::{Arrow, Codec, Parquet, Payload};

/// A column type, as the generator sees it.
#[derive(Debug, Clone)]
enum Ty {
    Int64,
    Float64,
    Bool,
    Text,
    /// Words keyed by `Int32`.
    Dictionary,
    /// Microseconds in a time zone.
    Timestamp(&'static str),
    /// Nanoseconds without a time zone.
    Instant,
    /// `Decimal128(precision, scale)`.
    Decimal(u8, i8),
    List(Box<Column>),
    Struct(Vec<Column>),
}

#[derive(Debug, Clone)]
struct Column {
    ty: Ty,
    nullable: bool,
}

fn leaf() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(Ty::Int64),
        Just(Ty::Float64),
        Just(Ty::Bool),
        Just(Ty::Text),
        Just(Ty::Dictionary),
        prop::sample::select(vec!["UTC", "+02:00", "America/New_York"]).prop_map(Ty::Timestamp),
        Just(Ty::Instant),
        (1u8..=38)
            .prop_flat_map(|p| (Just(p), 0..=i8::try_from(p).unwrap()))
            .prop_map(|(p, s)| Ty::Decimal(p, s)),
    ]
}

fn leaf_column() -> impl Strategy<Value = Column> {
    (leaf(), any::<bool>()).prop_map(|(ty, nullable)| Column { ty, nullable })
}

fn column() -> impl Strategy<Value = Column> {
    leaf_column().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), any::<bool>()).prop_map(|(c, nullable)| Column {
                ty: Ty::List(Box::new(c)),
                nullable,
            }),
            (
                prop::collection::vec(prop_oneof![inner, leaf_column()], 1..4),
                any::<bool>()
            )
                .prop_map(|(cs, nullable)| Column {
                    ty: Ty::Struct(cs),
                    nullable,
                }),
        ]
    })
}

impl Column {
    fn data_type(&self) -> DataType {
        match &self.ty {
            Ty::Int64 => DataType::Int64,
            Ty::Float64 => DataType::Float64,
            Ty::Bool => DataType::Boolean,
            Ty::Text => DataType::Utf8,
            Ty::Dictionary => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            Ty::Timestamp(tz) => DataType::Timestamp(TimeUnit::Microsecond, Some((*tz).into())),
            Ty::Instant => DataType::Timestamp(TimeUnit::Nanosecond, None),
            Ty::Decimal(p, s) => DataType::Decimal128(*p, *s),
            Ty::List(item) => DataType::List(Arc::new(item.field("item"))),
            Ty::Struct(children) => DataType::Struct(fields(children)),
        }
    }

    fn field(&self, name: &str) -> Field {
        Field::new(name, self.data_type(), self.nullable)
    }

    /// `len` values from `rng`, null where the column may be and `rng` says so.
    fn array(&self, len: usize, rng: &mut Rng) -> ArrayRef {
        let nulls = self
            .nullable
            .then(|| (0..len).map(|_| rng.below(4) != 0).collect::<NullBuffer>());
        let valid = |i: usize| nulls.as_ref().is_none_or(|n| n.is_valid(i));
        let mut draw = |f: &mut dyn FnMut(&mut Rng) -> i64| -> Vec<Option<i64>> {
            (0..len).map(|i| valid(i).then(|| f(rng))).collect()
        };
        match &self.ty {
            Ty::Int64 => Arc::new(Int64Array::from(draw(&mut |r| r.signed()))),
            Ty::Float64 => Arc::new(
                draw(&mut |r| r.signed() % 1_000_000)
                    .into_iter()
                    .map(|v| v.map(|v| f64::from(i32::try_from(v).unwrap()) / 7.0))
                    .collect::<Float64Array>(),
            ),
            Ty::Bool => Arc::new(
                draw(&mut |r| r.signed() & 1)
                    .into_iter()
                    .map(|v| v.map(|v| v == 1))
                    .collect::<BooleanArray>(),
            ),
            Ty::Text => Arc::new(
                draw(&mut |r| r.signed())
                    .into_iter()
                    .map(|v| v.map(|v| format!("t{}é", v % 97)))
                    .collect::<StringArray>(),
            ),
            Ty::Dictionary => {
                let words = ["north", "south", "east", "west", "up"];
                let keys = draw(&mut |r| r.signed().rem_euclid(5));
                let keys: Int32Array = keys
                    .into_iter()
                    .map(|k| k.map(|k| i32::try_from(k).unwrap()))
                    .collect();
                let values = Arc::new(StringArray::from(words.to_vec()));
                Arc::new(DictionaryArray::<Int32Type>::try_new(keys, values).unwrap())
            }
            Ty::Timestamp(tz) => Arc::new(
                TimestampMicrosecondArray::from(draw(&mut |r| r.signed() % 4_000_000_000_000_000))
                    .with_timezone(*tz),
            ),
            Ty::Instant => Arc::new(TimestampNanosecondArray::from(draw(&mut |r| r.signed()))),
            Ty::Decimal(p, s) => {
                let max = 10i128.pow(u32::from(*p).min(18)) - 1;
                let values = draw(&mut |r| r.signed());
                let values = values.into_iter().map(|v| v.map(|v| i128::from(v) % max));
                Arc::new(
                    values
                        .collect::<Decimal128Array>()
                        .with_precision_and_scale(*p, *s)
                        .unwrap(),
                )
            }
            Ty::List(item) => {
                let lengths: Vec<usize> = (0..len)
                    .map(|i| if valid(i) { rng.below(4) } else { 0 })
                    .collect();
                let values = item.array(lengths.iter().sum(), rng);
                let offsets = OffsetBuffer::from_lengths(lengths);
                let field = Arc::new(item.field("item"));
                Arc::new(ListArray::try_new(field, offsets, values, nulls).unwrap())
            }
            Ty::Struct(children) => {
                let arrays = children.iter().map(|c| c.array(len, rng)).collect();
                Arc::new(StructArray::try_new(fields(children), arrays, nulls).unwrap())
            }
        }
    }
}

fn fields(columns: &[Column]) -> Fields {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| c.field(&format!("c{i}")))
        .collect()
}

/// A small deterministic generator, seeded by the property.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn signed(&mut self) -> i64 {
        i64::from_ne_bytes(self.next().to_ne_bytes())
    }
}

fn schema(columns: &[Column]) -> SchemaRef {
    Arc::new(Schema::new(fields(columns)))
}

fn batches(columns: &[Column], rows: &[usize], seed: u64) -> Vec<RecordBatch> {
    let mut rng = Rng(seed | 1);
    let schema = schema(columns);
    rows.iter()
        .map(|&n| {
            let arrays = columns.iter().map(|c| c.array(n, &mut rng)).collect();
            RecordBatch::try_new(Arc::clone(&schema), arrays).unwrap()
        })
        .collect()
}

fn round_trip<C: Codec<T>, T>(value: &T, settings: &str) -> T {
    let mut bytes = Vec::new();
    C::encode(value, &mut bytes, settings).unwrap();
    C::decode(Payload::unchecked(Bytes::from(bytes))).unwrap()
}

/// The rows of `batches` as one batch of `schema`.
fn rows(schema: &SchemaRef, batches: &[RecordBatch]) -> RecordBatch {
    concat_batches(schema, batches).unwrap()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 160,
        rng_seed: RngSeed::Fixed(0x5EED_0B47),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn many_batches_round_trip_as_the_same_rows(
        columns in prop::collection::vec(column(), 1..5),
        rows_per_batch in prop::collection::vec(0usize..60, 0..4),
        seed in any::<u64>(),
        compression in prop::sample::select(vec!["none", "snappy", "zstd1"]),
    ) {
        let schema = schema(&columns);
        let sent = batches(&columns, &rows_per_batch, seed);
        let want = rows(&schema, &sent);
        let total = want.num_rows();

        let back = round_trip::<Parquet, Vec<RecordBatch>>(&sent, compression);
        prop_assert_eq!(&rows(&schema, &back), &want);
        prop_assert!(back.iter().all(|b| b.schema() == schema));
        prop_assert_eq!(back.is_empty(), sent.is_empty());

        let back = round_trip::<Arrow, Vec<RecordBatch>>(&sent, "");
        prop_assert_eq!(&rows(&schema, &back), &want);
        prop_assert!(back.iter().all(|b| b.schema() == schema));
        prop_assert_eq!(back.is_empty(), sent.is_empty());

        let one = round_trip::<Parquet, RecordBatch>(&want, compression);
        prop_assert_eq!(&one, &want);
        let one = round_trip::<Arrow, RecordBatch>(&want, "");
        prop_assert_eq!(&one, &want);
        prop_assert_eq!(one.num_rows(), total);
    }
}

#[test]
fn the_generator_makes_every_kind_of_column() {
    let every = vec![
        Column {
            ty: Ty::Dictionary,
            nullable: true,
        },
        Column {
            ty: Ty::Timestamp("+02:00"),
            nullable: true,
        },
        Column {
            ty: Ty::Decimal(20, 4),
            nullable: false,
        },
        Column {
            ty: Ty::List(Box::new(Column {
                ty: Ty::Struct(vec![
                    Column {
                        ty: Ty::Text,
                        nullable: true,
                    },
                    Column {
                        ty: Ty::Instant,
                        nullable: false,
                    },
                ]),
                nullable: true,
            })),
            nullable: true,
        },
    ];
    let sent = batches(&every, &[50, 30], 7);
    assert!(sent[0].column(0).null_count() > 0);
    assert!(sent[0].column(3).null_count() > 0);
    let back = round_trip::<Parquet, Vec<RecordBatch>>(&sent, "none");
    let schema = schema(&every);
    assert_eq!(rows(&schema, &back), rows(&schema, &sent));
    assert_eq!(back[0].schema(), schema);
}
