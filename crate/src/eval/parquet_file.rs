//! C-MTEB reranking samples from a Parquet file (the format of the data sets on the Hugging
//! Face hub): string column `query`, list-of-string columns `positive` and `negative`. Read with
//! the parquet crate's record API, which needs no arrow.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::reader::RowIter;
use parquet::record::{Field, Row};
use parquet::schema::types::Type;

use super::sample::Sample;
use crate::error::{Error, Result};

const COLUMNS: [&str; 3] = ["query", "positive", "negative"];

/// The samples of `path`, decoded lazily; each error names the file and its 1-based row.
pub fn read_samples(path: &Path) -> Result<impl Iterator<Item = Result<Sample>> + use<>> {
    let file =
        File::open(path).map_err(|e| Error::data(path, None, format!("cannot open: {e}")))?;
    let reader = SerializedFileReader::new(file)
        .map_err(|e| Error::data(path, None, format!("not a readable Parquet file ({e})")))?;
    let projection = sample_columns(reader.metadata().file_metadata().schema(), path)?;
    // Only the three columns are decoded: other columns may be large or of any type.
    let rows = RowIter::from_file_into(Box::new(reader))
        .project(Some(projection))
        .map_err(|e| Error::data(path, None, format!("cannot read rows ({e})")))?;
    let path = path.to_path_buf();
    Ok(rows.enumerate().map(move |(index, row)| {
        let number = index + 1;
        let fail = |reason: String| Error::data(&path, Some(number), reason);
        let row = row.map_err(|e| fail(format!("cannot decode ({e})")))?;
        sample_from_row(&row, &fail)
    }))
}

/// The file schema of `path` reduced to the sample columns, or which of them is missing.
fn sample_columns(schema: &Type, path: &Path) -> Result<Type> {
    let fields = schema.get_fields();
    let mut selected = Vec::new();
    for name in COLUMNS {
        match fields.iter().find(|f| f.name() == name) {
            Some(field) => selected.push(Arc::clone(field)),
            None => {
                let found: Vec<&str> = fields.iter().map(|f| f.name()).collect();
                return Err(Error::data(
                    path,
                    None,
                    format!(
                        "no column `{name}` (expected query, positive, negative; found {})",
                        found.join(", ")
                    ),
                ));
            }
        }
    }
    Type::group_type_builder(schema.name())
        .with_fields(selected)
        .build()
        .map_err(|e| {
            Error::data(
                path,
                None,
                format!("cannot select the sample columns ({e})"),
            )
        })
}

/// The sample of one row; `fail` turns the reason it is not one into the error.
fn sample_from_row(row: &Row, fail: &dyn Fn(String) -> Error) -> Result<Sample> {
    let (mut query, mut positive, mut negative) = (None, None, None);
    for (name, field) in row.get_column_iter() {
        match name.as_str() {
            "query" => {
                query =
                    Some(text(field).map_err(|found| {
                        fail(format!("`query` must be a string, found {found}"))
                    })?)
            }
            "positive" => positive = Some(passages(field, "positive", fail)?),
            "negative" => negative = Some(passages(field, "negative", fail)?),
            _ => {}
        }
    }
    let missing = |name: &str| fail(format!("missing field `{name}`"));
    Ok(Sample {
        query: query.ok_or_else(|| missing("query"))?,
        positive: positive.ok_or_else(|| missing("positive"))?,
        negative: negative.ok_or_else(|| missing("negative"))?,
    })
}

fn passages(field: &Field, name: &str, fail: &dyn Fn(String) -> Error) -> Result<Vec<String>> {
    let Field::ListInternal(list) = field else {
        return Err(fail(format!(
            "`{name}` must be a list of strings, found {}",
            kind(field)
        )));
    };
    list.elements()
        .iter()
        .enumerate()
        .map(|(i, item)| {
            text(item)
                .map_err(|found| fail(format!("`{name}[{i}]` must be a string, found {found}")))
        })
        .collect()
}

/// A string value; binary columns holding UTF-8 count too (some writers drop the annotation).
/// Otherwise what was found instead, for the caller's message.
fn text(field: &Field) -> std::result::Result<String, &'static str> {
    match field {
        Field::Str(s) => Ok(s.clone()),
        Field::Bytes(b) => std::str::from_utf8(b.data())
            .map(str::to_owned)
            .map_err(|_| "bytes that are not UTF-8"),
        other => Err(kind(other)),
    }
}

fn kind(field: &Field) -> &'static str {
    match field {
        Field::Null => "null",
        Field::Bool(_) => "a boolean",
        Field::Str(_) => "a string",
        Field::Bytes(_) => "bytes",
        Field::Group(_) => "a struct",
        Field::ListInternal(_) => "a list",
        Field::MapInternal(_) => "a map",
        Field::Float(_) | Field::Double(_) | Field::Float16(_) | Field::Decimal(_) => "a number",
        Field::Byte(_) | Field::Short(_) | Field::Int(_) | Field::Long(_) => "a number",
        Field::UByte(_) | Field::UShort(_) | Field::UInt(_) | Field::ULong(_) => "a number",
        _ => "a date or time",
    }
}
