//! One header plus rows of text, printed as a boxed table, markdown or CSV.

use super::Format;
use tabled::builder::Builder;
use tabled::settings::Style;

/// Print `header` and `rows` in `format`. Json is not a grid: callers build JSON
/// themselves; here it falls back to CSV.
pub fn grid(header: &[String], rows: &[Vec<String>], format: Format) -> String {
    match format {
        Format::Table | Format::Markdown => {
            let mut builder = Builder::default();
            let escape = format == Format::Markdown;
            let cell = |s: &String| {
                if escape {
                    s.replace('|', "\\|")
                } else {
                    s.clone()
                }
            };
            builder.push_record(header.iter().map(cell));
            for row in rows {
                builder.push_record(row.iter().map(cell));
            }
            let mut table = builder.build();
            if escape {
                table.with(Style::markdown());
            } else {
                table.with(Style::rounded());
            }
            table.to_string()
        }
        Format::Csv | Format::Json => csv_text(header, rows),
    }
}

fn csv_text(header: &[String], rows: &[Vec<String>]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = writer.write_record(header);
    for row in rows {
        let _ = writer.write_record(row);
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).trim_end().to_string()
}
