//! Parquet output through the `parquet` crate's `ArrowWriter`: the rows are buffered
//! per column (prediction holds them all anyway) and written as one snappy-compressed
//! file at the end. Text fields are strings (readers hand every field over as text),
//! probabilities 32-bit floats.

use super::Cell;
use anyhow::Result;
use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use std::io::Write;
use std::sync::Arc;

/// One column's values so far; its type is its first cell's.
enum Column {
    Text(Vec<String>),
    Number(Vec<f32>),
}

/// The rows of a Parquet output, column by column.
#[derive(Default)]
pub(super) struct Columns {
    columns: Vec<Column>,
}

impl Columns {
    /// Append one row (cells in column order).
    pub(super) fn push(&mut self, cells: &[Cell<'_>]) {
        if self.columns.is_empty() {
            self.columns = cells
                .iter()
                .map(|c| match c {
                    Cell::Text(_) => Column::Text(Vec::new()),
                    Cell::Number(_) => Column::Number(Vec::new()),
                })
                .collect();
        }
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            match (column, cell) {
                (Column::Text(v), Cell::Text(t)) => v.push((*t).to_string()),
                (Column::Text(v), Cell::Number(x)) => v.push(format!("{x:.6}")),
                (Column::Number(v), Cell::Number(x)) => v.push(*x),
                (Column::Number(v), Cell::Text(t)) => v.push(t.parse().unwrap_or(f32::NAN)),
            }
        }
    }

    /// Write every row under `names` to `out` as one Parquet file.
    pub(super) fn write<W: Write + Send>(self, names: &[String], out: W) -> Result<()> {
        let mut fields = Vec::with_capacity(names.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(names.len());
        let mut columns = self.columns.into_iter();
        for name in names {
            let (data_type, array): (DataType, ArrayRef) = match columns.next() {
                Some(Column::Number(v)) => (DataType::Float32, Arc::new(Float32Array::from(v))),
                Some(Column::Text(v)) => (DataType::Utf8, Arc::new(StringArray::from(v))),
                // No rows: every column a string column.
                None => (
                    DataType::Utf8,
                    Arc::new(StringArray::from(Vec::<String>::new())),
                ),
            };
            fields.push(Field::new(name, data_type, false));
            arrays.push(array);
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build();
        let mut writer = ArrowWriter::try_new(out, schema, Some(props))?;
        writer.write(&batch)?;
        writer.close()?;
        Ok(())
    }
}
