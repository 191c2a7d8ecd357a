//! `cache = parquet` for Polars `DataFrame`s, written and read by Polars' own Parquet
//! writer and reader.

use std::io::{Cursor, Write};

use polars::prelude::{
    DataFrame, ParquetCompression as PolarsCompression, ParquetReader, ParquetWriter, SerReader,
};

use super::{ParquetData, Payload, Reads};
use crate::BoxError;
use crate::config::ParquetCompression;

/// Read whole: Polars reads a file by mapping it into memory, and a payload file mapped
/// while another process truncates it would end this one; bytes read once cannot change.
impl ParquetData for DataFrame {
    const READS: Reads = Reads::Whole;

    fn write_parquet<W: Write + Send>(
        &self,
        out: &mut W,
        compression: ParquetCompression,
    ) -> Result<(), BoxError> {
        let compression = match compression {
            ParquetCompression::None => PolarsCompression::Uncompressed,
            ParquetCompression::Snappy => PolarsCompression::Snappy,
            // Polars' own default level.
            ParquetCompression::Zstd => PolarsCompression::Zstd(None),
        };
        // The writer takes the frame mutably to rechunk it; its columns are shared, not copied.
        let mut frame = self.clone();
        ParquetWriter::new(out)
            .with_compression(compression)
            .finish(&mut frame)?;
        Ok(())
    }

    fn read_parquet(payload: Payload) -> Result<Self, BoxError> {
        let bytes = payload.into_bytes()?;
        Ok(ParquetReader::new(Cursor::new(bytes)).finish()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Parquet;
    use crate::codec::round_trip;
    use polars::prelude::Column;

    #[test]
    fn frames_round_trip_with_their_nulls() {
        let frame = DataFrame::new_infer_height(vec![
            Column::new("id".into(), [1i64, 2, 3]),
            Column::new("x".into(), [Some(0.5f64), None, Some(2.5)]),
            Column::new("name".into(), [Some("a"), Some("b"), None]),
        ])
        .unwrap();
        let back = round_trip::<Parquet, DataFrame>(&frame);
        assert!(back.equals_missing(&frame));
        let garbage = Payload::unchecked(&b"PAR1 not a parquet file PAR1"[..]);
        assert!(<Parquet as crate::Codec<DataFrame>>::decode(garbage).is_err());
    }
}
