//! Properties of what the store reads from disk, over generated inputs: metadata files
//! round-trip, damaged metadata never decodes to a different entry, and no bytes at all
//! (random, or a valid file damaged) make a metadata or payload decoder panic.
//!
//! The decoders are called directly: a panic fails the property (nothing here catches it).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, ListArray, StringArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{RngSeed, TestRunner};
use stage_core::{
    Ancestor, Arrow, Bincode, Codec, Digest, Element, Entry, FORMAT, Ingredients, Input, Named,
    ParamPart, Parquet, Payload, decode_meta, encode_meta,
};

/// A fixed seed for every property: a failure repeats on every run and machine.
fn config(cases: u32, seed: u64) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- generated entries

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

/// Any text, with a bias to what JSON has to escape.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\"\\\\/\\x00-\\x1f\\u{7f}-\\u{a0}a-z:{}\\[\\],é😀\u{2028}]{0,24}",
    ]
}

fn ingredients() -> impl Strategy<Value = Ingredients> {
    let named = (text(), digest()).prop_map(|(name, hash)| Named { name, hash });
    let param =
        (text(), digest(), text()).prop_map(|(name, hash, value)| ParamPart { name, hash, value });
    let input =
        (text(), text(), digest()).prop_map(|(param, path, hash)| Input { param, path, hash });
    let ancestor = (text(), text(), text(), digest(), digest()).prop_map(
        |(param, stage, name, key, output)| Ancestor {
            param,
            stage,
            name,
            key,
            output,
        },
    );
    (
        (
            any::<u32>(),
            text(),
            digest(),
            proptest::option::of(text()),
            text(),
            proptest::option::of(digest()),
        ),
        (
            prop::collection::vec(named, 0..3),
            prop::collection::vec(param, 0..4),
            prop::collection::vec(input, 0..3),
            prop::collection::vec(ancestor, 0..3),
            proptest::option::of((text(), digest())),
        ),
    )
        .prop_map(
            |(
                (format, stage, code, salt, codec, shape),
                (helpers, params, inputs, ancestors, element),
            )| {
                Ingredients {
                    format,
                    stage,
                    code,
                    salt,
                    helpers,
                    codec,
                    shape,
                    params,
                    inputs,
                    ancestors,
                    element: element.map(|(label, identity)| Element { label, identity }),
                }
            },
        )
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        digest(),
        ingredients(),
        text(),
        text(),
        any::<u64>(),
        digest(),
        prop::collection::vec(digest(), 0..4),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                key,
                ingredients,
                output,
                payload,
                bytes,
                blake3,
                segments,
                created_ms,
                compute_ms,
            )| {
                Entry {
                    key,
                    ingredients,
                    output,
                    payload,
                    bytes,
                    blake3,
                    segments,
                    created_ms,
                    compute_ms,
                }
            },
        )
}

// ---- metadata files

proptest! {
    #![proptest_config(config(512, 0x5EED_0001))]

    /// (i) What is written is read back, exactly.
    #[test]
    fn metadata_round_trips(e in entry()) {
        let bytes = encode_meta(&e).unwrap();
        prop_assert_eq!(decode_meta(&bytes), Some(e));
    }

    /// (ii) Any bytes at all: an entry or nothing, never a panic.
    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        let _ = decode_meta(&bytes);
    }

    /// (ii) Text shaped like a metadata file, with a checksum that matches whatever its
    /// entry part holds: the decoder gets past the checksum and must still not panic.
    #[test]
    fn decoding_checksummed_nonsense_never_panics(
        e in entry(),
        at in any::<Index>(),
        byte in any::<u8>(),
        format in prop_oneof![Just(FORMAT), any::<u32>()],
    ) {
        let mut body = serde_json::to_vec(&e).unwrap();
        let i = at.index(body.len());
        body[i] = byte;
        // The entry part must still be one JSON value for the envelope to parse.
        if let Ok(raw) = std::str::from_utf8(&body) {
            let text = format!(r#"{{"format":{format},"checksum":"{}","entry":{raw}}}"#, Digest::of(raw.as_bytes()));
            if decode_meta(text.as_bytes()).is_some() {
                prop_assert_eq!(format, FORMAT, "an entry of another format was read");
            }
        }
    }

    /// (iii) One byte changed, anywhere, to anything: nothing, or the same entry (the
    /// case of a hex digit in the checksum does not change the digest it spells).
    #[test]
    fn a_changed_byte_never_decodes_to_another_entry(e in entry(), at in any::<Index>(), byte in any::<u8>()) {
        let good = encode_meta(&e).unwrap();
        let i = at.index(good.len());
        prop_assume!(good[i] != byte);
        let mut bad = good.clone();
        bad[i] = byte;
        let decoded = decode_meta(&bad);
        prop_assert!(decoded.is_none() || decoded.as_ref() == Some(&e), "byte {i} -> {byte:#04x} decoded to {decoded:?}");
    }

    /// (iii) Cut short anywhere: nothing.
    #[test]
    fn a_truncated_file_never_decodes_to_another_entry(e in entry(), at in any::<Index>()) {
        let good = encode_meta(&e).unwrap();
        let len = at.index(good.len());
        let decoded = decode_meta(&good[..len]);
        prop_assert!(decoded.is_none() || decoded.as_ref() == Some(&e), "cut at {len} decoded to {decoded:?}");
    }

    /// (iii, more) A byte removed or inserted: nothing, or the same entry (whitespace
    /// outside the checksummed part).
    #[test]
    fn a_removed_or_inserted_byte_never_decodes_to_another_entry(
        e in entry(),
        at in any::<Index>(),
        byte in any::<u8>(),
        insert in any::<bool>(),
    ) {
        let mut bad = encode_meta(&e).unwrap();
        let i = at.index(bad.len());
        if insert {
            bad.insert(i, byte);
        } else {
            bad.remove(i);
        }
        let decoded = decode_meta(&bad);
        prop_assert!(decoded.is_none() || decoded.as_ref() == Some(&e), "decoded to {decoded:?}");
    }
}

// ---- payloads

fn bincode_decode<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static>(
    bytes: &[u8],
) -> Result<T, stage_core::BoxError> {
    <Bincode as Codec<T>>::decode(Payload::unchecked(Bytes::copy_from_slice(bytes)))
}

fn bincode_encode<T: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static>(
    value: &T,
) -> Vec<u8> {
    let mut out = Vec::new();
    <Bincode as Codec<T>>::encode(value, &mut out, "").unwrap();
    out
}

fn parquet_decode(bytes: &[u8]) -> Result<RecordBatch, stage_core::BoxError> {
    <Parquet as Codec<RecordBatch>>::decode(Payload::unchecked(Bytes::copy_from_slice(bytes)))
}

/// A small batch with several column types, nulls and a nested list.
fn batch(rows: usize, seed: i64) -> RecordBatch {
    let n = i64::try_from(rows).unwrap();
    let ids: Vec<i64> = (0..n).map(|i| i.wrapping_mul(seed)).collect();
    let xs: Vec<Option<f64>> = (0..rows)
        .map(|i| (i % 4 != 0).then(|| f64::from(u32::try_from(i).unwrap()) / 3.0))
        .collect();
    let names: Vec<Option<String>> = (0..rows)
        .map(|i| (i % 3 != 0).then(|| format!("n{i}-{seed}")))
        .collect();
    let flags: Vec<bool> = (0..rows).map(|i| i % 2 == 0).collect();
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>((0..rows).map(|i| {
        (i % 5 != 0).then(|| {
            (0..i32::try_from(i % 4).unwrap())
                .map(Some)
                .collect::<Vec<_>>()
        })
    }));
    let schema = Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("x", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, false),
        Field::new("list", lists.data_type().clone(), true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(Float64Array::from(xs)),
            Arc::new(StringArray::from(names)),
            Arc::new(BooleanArray::from(flags)),
            Arc::new(lists),
        ],
    )
    .unwrap()
}

fn parquet_file(rows: usize, seed: i64) -> Vec<u8> {
    let mut out = Vec::new();
    <Parquet as Codec<RecordBatch>>::encode(&batch(rows, seed), &mut out, "snappy").unwrap();
    out
}

/// A damage to a valid file: bytes overwritten, or the file cut short.
#[derive(Debug, Clone)]
enum Damage {
    Overwrite(Vec<(Index, u8)>),
    Truncate(Index),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        3 => prop::collection::vec((any::<Index>(), any::<u8>()), 1..4).prop_map(Damage::Overwrite),
        1 => any::<Index>().prop_map(Damage::Truncate),
    ]
}

fn damaged(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::Overwrite(changes) => {
            for (at, byte) in changes {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
        }
        Damage::Truncate(at) => bytes.truncate(at.index(bytes.len())),
    }
    bytes
}

proptest! {
    #![proptest_config(config(512, 0x5EED_0002))]

    /// (iv) Any bytes as a bincode payload of several types: an error or a value, never a
    /// panic. (Types holding strings are in `bincode_decoding_strings_...` below: there a
    /// failure is an abort, which would end this whole test binary.)
    #[test]
    fn bincode_decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = bincode_decode::<Vec<u64>>(&bytes);
        let _ = bincode_decode::<Option<Vec<f64>>>(&bytes);
        let _ = bincode_decode::<BTreeMap<u8, Vec<i16>>>(&bytes);
        let _ = bincode_decode::<(char, bool, u128, Vec<Vec<u8>>)>(&bytes);
    }

    /// (iv) A valid bincode payload damaged: never a panic.
    #[test]
    fn bincode_decoding_a_damaged_payload_never_panics(
        values in prop::collection::vec(any::<u64>(), 0..64),
        words in prop::collection::vec(any::<String>(), 0..8),
        damage in damage(),
    ) {
        let bytes = damaged(bincode_encode(&values), &damage);
        let _ = bincode_decode::<Vec<u64>>(&bytes);
        let bytes = damaged(bincode_encode(&words), &damage);
        let _ = bincode_decode::<Vec<String>>(&bytes);
    }
}

proptest! {
    #![proptest_config(config(1000, 0x5EED_0003))]

    /// (iv) Any bytes as a Parquet payload, bare or framed by the Parquet magic and a
    /// footer length: an error, never a panic.
    #[test]
    fn parquet_decoding_any_bytes_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..512),
        footer in any::<u32>(),
        framed in any::<bool>(),
    ) {
        let bytes = if framed { frame(&body, footer, b"PAR1", b"PAR1") } else { body };
        prop_assert!(parquet_decode(&bytes).is_err());
    }

    /// (iv) A valid Parquet file damaged (bytes overwritten anywhere, or cut short): an
    /// error or a batch, never a panic.
    #[test]
    fn parquet_decoding_a_damaged_file_never_panics(rows in 0usize..40, seed in any::<i64>(), damage in damage()) {
        let bytes = damaged(parquet_file(rows, seed), &damage);
        let _ = parquet_decode(&bytes);
    }
}

/// `body` between a file format's leading and trailing magic, with a footer length (kept
/// within the file) before the trailing one: what a reader checks first.
fn frame(body: &[u8], footer: u32, head: &[u8], tail: &[u8]) -> Vec<u8> {
    let footer = footer % (u32::try_from(body.len()).unwrap() + 8);
    let mut bytes = head.to_vec();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(&footer.to_le_bytes());
    bytes.extend_from_slice(tail);
    bytes
}

fn ipc_decode(bytes: &[u8]) -> Result<Vec<RecordBatch>, stage_core::BoxError> {
    <Arrow as Codec<Vec<RecordBatch>>>::decode(Payload::unchecked(Bytes::copy_from_slice(bytes)))
}

fn ipc_file(rows: usize, seed: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let batches = vec![batch(rows, seed), batch(rows / 2, seed ^ 1)];
    <Arrow as Codec<Vec<RecordBatch>>>::encode(&batches, &mut out, "").unwrap();
    out
}

proptest! {
    #![proptest_config(config(1000, 0x5EED_0005))]

    /// (iv) Any bytes as an Arrow IPC payload, bare or framed by the IPC magic and a
    /// footer length: an error, never a panic.
    #[test]
    fn ipc_decoding_any_bytes_never_panics(
        body in prop::collection::vec(any::<u8>(), 0..512),
        footer in any::<u32>(),
        framed in any::<bool>(),
    ) {
        let bytes = if framed { frame(&body, footer, b"ARROW1\0\0", b"ARROW1") } else { body };
        prop_assert!(ipc_decode(&bytes).is_err());
    }

    /// (iv) A valid IPC file damaged (bytes overwritten anywhere, or cut short): an error or
    /// batches, never a panic.
    #[test]
    fn ipc_decoding_a_damaged_file_never_panics(rows in 0usize..40, seed in any::<i64>(), damage in damage()) {
        let bytes = damaged(ipc_file(rows, seed), &damage);
        let _ = ipc_decode(&bytes);
    }
}

#[test]
fn an_undamaged_ipc_file_decodes_to_its_batches() {
    for rows in [2, 39] {
        assert_eq!(
            ipc_decode(&ipc_file(rows, 7)).unwrap(),
            [batch(rows, 7), batch(rows / 2, 7 ^ 1)]
        );
    }
}

#[test]
fn an_undamaged_parquet_file_decodes_to_its_batch() {
    for rows in [0, 1, 39] {
        assert_eq!(
            parquet_decode(&parquet_file(rows, 7)).unwrap(),
            batch(rows, 7)
        );
    }
}

/// (iv) Decoding any bytes as bincode types that hold strings, in a child process (this
/// test binary, re-run): bincode allocates a string's length before it reads the bytes,
/// and a failed allocation aborts the process, which no test harness survives.
#[test]
fn bincode_decoding_strings_from_any_bytes_never_panics_or_aborts() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "bincode_strings_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("ENTRY_PROPS_STRINGS_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("STRINGS OK"),
        "decoding bytes as bincode strings ended the process ({}): {}",
        out.status,
        stderr
            .lines()
            .filter(|l| !l.trim_start().starts_with("at "))
            .take(12)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
#[ignore = "run in a child process by `bincode_decoding_strings_from_any_bytes_never_panics_or_aborts`"]
fn bincode_strings_child() {
    if std::env::var_os("ENTRY_PROPS_STRINGS_CHILD").is_none() {
        return;
    }
    // The smallest case: a varint marker for an 8-byte length (0xFD), then a length of
    // about 9 * 10^18, and no string.
    let _ = bincode_decode::<String>(&[0xFD, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
    let mut runner = TestRunner::new(config(512, 0x5EED_0004));
    runner
        .run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
            let _ = bincode_decode::<String>(&bytes);
            let _ = bincode_decode::<Vec<(u32, String)>>(&bytes);
            let _ = bincode_decode::<BTreeMap<String, Vec<i16>>>(&bytes);
            Ok(())
        })
        .unwrap();
    println!("STRINGS OK");
}

/// The smallest damaged Parquet file the properties found: one byte of a 17-row file's
/// footer changed makes a column chunk's offset negative, and the reader asserts it is not.
#[test]
fn parquet_decoding_a_file_with_a_negative_column_offset_is_an_error() {
    let mut bytes = parquet_file(17, 99_996_303_570_000_100);
    // Byte 1023 of the 2008-byte file, with parquet 60.1's writer.
    bytes[1023] = 137;
    assert!(parquet_decode(&bytes).is_err());
}
