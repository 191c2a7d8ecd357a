//! `cache = arrow`: Arrow record batches in an Arrow IPC file, read back in place: the
//! arrays of a hit point into the one buffer the payload was read and checked in.

use std::io::Write;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::ipc::reader::{FileDecoder, read_footer_length};
use arrow::ipc::writer::FileWriter;
use arrow::ipc::{Block, convert::try_fb_to_schema, root_as_footer};

use super::{Arrow, Codec, Payload, Reads};
use crate::BoxError;

/// Arrow data that `cache = arrow` (and `cache = parquet`) can keep: a `RecordBatch`, or a
/// `Vec<RecordBatch>` of one schema.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached as arrow",
    label = "`cache = arrow` needs an Arrow `RecordBatch` or `Vec<RecordBatch>` here",
    note = "use `cache = bincode` for a serde type, or leave `cache` out to keep the value in memory only"
)]
pub trait ArrowData: Sized + Send + Sync + 'static {
    /// The batches to write, all of one schema.
    fn batches(&self) -> &[RecordBatch];

    /// The schema of the batches; `None` when there is no batch to take it from.
    fn schema(&self) -> Option<SchemaRef> {
        self.batches().first().map(RecordBatch::schema)
    }

    /// The value for batches read back: the same rows in the same order, though not
    /// necessarily cut into batches at the same places.
    ///
    /// # Errors
    /// When the batches cannot make a value of this type.
    fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self, BoxError>;
}

impl ArrowData for RecordBatch {
    fn batches(&self) -> &[RecordBatch] {
        std::slice::from_ref(self)
    }

    fn from_batches(schema: SchemaRef, mut batches: Vec<RecordBatch>) -> Result<Self, BoxError> {
        Ok(match batches.len() {
            0 => RecordBatch::new_empty(schema),
            1 => batches.remove(0),
            _ => arrow::compute::concat_batches(&schema, &batches)?,
        })
    }
}

/// An empty `Vec` has no schema: it is kept as a file without columns and read back
/// empty. Batches without rows are not kept, except one that carries the schema when no
/// batch has rows.
impl ArrowData for Vec<RecordBatch> {
    fn batches(&self) -> &[RecordBatch] {
        self
    }

    fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self, BoxError> {
        if batches.iter().all(|b| b.num_rows() == 0) {
            let empty = (!schema.fields().is_empty()).then(|| RecordBatch::new_empty(schema));
            return Ok(empty.into_iter().collect());
        }
        Ok(batches.into_iter().filter(|b| b.num_rows() > 0).collect())
    }
}

/// The schema `value` is written with: its own, or none at all for an empty `Vec`.
pub(crate) fn schema_of<T: ArrowData>(value: &T) -> SchemaRef {
    value.schema().unwrap_or_else(|| Arc::new(Schema::empty()))
}

impl<T: ArrowData> Codec<T> for Arrow {
    const ID: &'static str = "arrow-ipc/1";
    const EXTENSION: &'static str = "arrow";
    const READS: Reads = Reads::Map;

    fn encode<W: Write + Send>(value: &T, out: &mut W, _: &str) -> Result<(), BoxError> {
        let schema = schema_of(value);
        let batches = value.batches();
        let mut writer = FileWriter::try_new(out, &schema)?;
        // An IPC file holds one dictionary per field: batches whose dictionaries may
        // differ are joined into one batch, whose dictionaries are merged.
        if batches.len() > 1
            && schema
                .fields()
                .iter()
                .any(|f| has_dictionary(f.data_type()))
        {
            writer.write(&arrow::compute::concat_batches(&schema, batches)?)?;
        } else {
            for batch in batches.iter().filter(|b| b.num_rows() > 0) {
                writer.write(batch)?;
            }
        }
        writer.finish()?;
        Ok(())
    }

    fn decode(payload: Payload) -> Result<T, BoxError> {
        let bytes = payload.into_bytes()?;
        // The decoder validates every array, but a damaged file may still reach an
        // assertion of the flatbuffer or array code: a panic is an error too.
        let (schema, batches) = std::panic::catch_unwind(|| read_ipc(&Buffer::from(bytes)))
            .unwrap_or_else(|_| Err("malformed arrow file (the reader panicked)".into()))?;
        T::from_batches(schema, batches)
    }
}

/// Whether values of `data_type` hold a dictionary anywhere.
fn has_dictionary(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(..) => true,
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::Map(f, _) => has_dictionary(f.data_type()),
        DataType::Struct(fields) => fields.iter().any(|f| has_dictionary(f.data_type())),
        DataType::Union(fields, _) => fields.iter().any(|(_, f)| has_dictionary(f.data_type())),
        DataType::RunEndEncoded(_, values) => has_dictionary(values.data_type()),
        _ => false,
    }
}

/// Reads an IPC file whose bytes are `buffer`: its arrays are slices of it, not copies
/// (but for a buffer that is not aligned for its type, which is copied).
fn read_ipc(buffer: &Buffer) -> Result<(SchemaRef, Vec<RecordBatch>), BoxError> {
    const TRAILER: usize = 10;
    let trailer_start = buffer
        .len()
        .checked_sub(TRAILER)
        .ok_or("not an arrow file: too short")?;
    let trailer: [u8; TRAILER] = buffer[trailer_start..].try_into()?;
    let footer_len = read_footer_length(trailer)?;
    let footer_start = trailer_start
        .checked_sub(footer_len)
        .ok_or("not an arrow file: its footer is longer than the file")?;
    let footer = root_as_footer(&buffer[footer_start..trailer_start])
        .map_err(|e| format!("not an arrow file: {e}"))?;
    let schema = Arc::new(try_fb_to_schema(
        footer.schema().ok_or("arrow file without a schema")?,
    )?);
    let mut decoder = FileDecoder::new(Arc::clone(&schema), footer.version());
    for block in footer.dictionaries().iter().flatten() {
        decoder.read_dictionary(block, &block_of(buffer, block, footer_start)?)?;
    }
    let mut batches = Vec::new();
    for block in footer.recordBatches().iter().flatten() {
        let batch = decoder
            .read_record_batch(block, &block_of(buffer, block, footer_start)?)?
            .ok_or("arrow file with an empty message")?;
        batches.push(batch);
    }
    Ok((schema, batches))
}

/// The bytes of the message `block` names, checked to lie before the footer.
fn block_of(buffer: &Buffer, block: &Block, footer_start: usize) -> Result<Buffer, BoxError> {
    let offset = usize::try_from(block.offset())?;
    let meta = usize::try_from(block.metaDataLength())?;
    let body = usize::try_from(block.bodyLength())?;
    let len = meta.checked_add(body).ok_or("arrow block too long")?;
    match offset.checked_add(len) {
        Some(end) if end <= footer_start => Ok(buffer.slice_with_length(offset, len)),
        _ => Err("arrow block outside the file".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::round_trip;
    use arrow::array::{Array, DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::Int32Type;

    fn batch(from: i64, rows: i64) -> RecordBatch {
        let ids: Int64Array = (from..from + rows).collect();
        let names: StringArray = (from..from + rows)
            .map(|i| (i % 3 != 0).then(|| format!("n{i}")))
            .collect();
        RecordBatch::try_from_iter([
            ("id", Arc::new(ids) as Arc<dyn Array>),
            ("name", Arc::new(names)),
        ])
        .unwrap()
    }

    #[test]
    fn batches_round_trip_in_order() {
        let one = batch(0, 1000);
        assert_eq!(round_trip::<Arrow, RecordBatch>(&one), one);
        let many = vec![batch(0, 10), batch(10, 0), batch(10, 7)];
        assert_eq!(
            round_trip::<Arrow, Vec<RecordBatch>>(&many),
            vec![batch(0, 10), batch(10, 7)]
        );
        assert!(round_trip::<Arrow, Vec<RecordBatch>>(&Vec::new()).is_empty());
        let empty = vec![batch(0, 0)];
        assert_eq!(round_trip::<Arrow, Vec<RecordBatch>>(&empty), empty);
        assert_eq!(round_trip::<Arrow, RecordBatch>(&batch(0, 0)), batch(0, 0));
    }

    #[test]
    fn a_hit_uses_the_payload_in_place() {
        let one = batch(0, 10_000);
        let mut bytes = Vec::new();
        <Arrow as Codec<RecordBatch>>::encode(&one, &mut bytes, "").unwrap();
        let bytes = bytes::Bytes::from(bytes);
        let range = bytes.as_ptr_range();
        let back: RecordBatch =
            <Arrow as Codec<RecordBatch>>::decode(Payload::checked(bytes.clone())).unwrap();
        let ids = back.column(0).to_data().buffers()[0].as_ptr();
        assert!(range.contains(&ids), "the ids were copied");
    }

    #[test]
    fn batches_with_different_dictionaries_round_trip() {
        let dict = |words: &[&str]| -> RecordBatch {
            let array: DictionaryArray<Int32Type> = words.iter().copied().collect();
            RecordBatch::try_from_iter([("w", Arc::new(array) as Arc<dyn Array>)]).unwrap()
        };
        let many = vec![dict(&["a", "b", "a"]), dict(&["c", "a"])];
        let back = round_trip::<Arrow, Vec<RecordBatch>>(&many);
        let schema = many[0].schema();
        assert_eq!(
            arrow::compute::concat_batches(&schema, &back).unwrap(),
            arrow::compute::concat_batches(&schema, &many).unwrap()
        );
        assert_eq!(
            schema.field(0).data_type(),
            back[0].schema().field(0).data_type()
        );
    }

    #[test]
    fn damaged_files_are_errors() {
        let mut bytes = Vec::new();
        <Arrow as Codec<RecordBatch>>::encode(&batch(0, 100), &mut bytes, "").unwrap();
        let decode = |b: Vec<u8>| <Arrow as Codec<RecordBatch>>::decode(Payload::unchecked(b));
        for cut in [0, 1, 9, 10, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(bytes[..cut].to_vec()).is_err(), "cut at {cut}");
        }
        for at in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5a;
            let _ = decode(bad);
        }
    }
}
