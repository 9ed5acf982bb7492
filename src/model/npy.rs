//! 2-D float matrices from NumPy `.npy` files (parsed by npyz), read as f32: the
//! `npy+vocab` format of pretrained embeddings.

use anyhow::{anyhow, bail, Context, Result};
use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar};
use std::io::{BufRead, ErrorKind, Read};
use std::path::Path;

/// What this module reads, for messages.
const EXPECTED: &str = "expected a 2-D float32 or float64 matrix";

/// The shape and element type of a `.npy` file's matrix, from its header.
pub(crate) struct Header {
    /// Rows (for embeddings: words).
    pub rows: usize,
    /// Columns (for embeddings: the vectors' dimension).
    pub cols: usize,
    /// float64 (else float32).
    wide: bool,
    inner: NpyHeader,
}

/// A `.npy` matrix's values as f32, in the file's order.
pub(crate) struct Matrix {
    rows: usize,
    cols: usize,
    fortran: bool,
    values: Vec<f32>,
}

impl Matrix {
    /// The value at row `i`, column `j` (C or Fortran order alike).
    pub fn get(&self, i: usize, j: usize) -> f32 {
        let k = if self.fortran {
            j * self.rows + i
        } else {
            i * self.cols + j
        };
        self.values[k]
    }
}

/// The header of the `.npy` file `path`, read from `reader`, which is left at the
/// start of the data.
///
/// # Errors
/// When the file is not a `.npy` file, or holds anything but a 2-D float32 or
/// float64 matrix with at least one column; the message names `path`.
pub(crate) fn read_header(path: &Path, reader: &mut dyn BufRead) -> Result<Header> {
    let mut magic = [0u8; 6];
    if reader.read_exact(&mut magic).is_err() || &magic != b"\x93NUMPY" {
        bail!(
            "{}: not a .npy file (it does not start with \\x93NUMPY)",
            path.display()
        );
    }
    let inner = NpyHeader::from_reader(magic.chain(reader))
        .with_context(|| format!("{}: unreadable .npy header; {EXPECTED}", path.display()))?;
    let bad = |what: String| anyhow!("{}: the .npy header {what}; {EXPECTED}", path.display());
    let wide = match inner.dtype() {
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 4 => false,
        DType::Plain(t) if t.type_char() == TypeChar::Float && t.size_field() == 8 => true,
        dtype => return Err(bad(format!("has the unsupported dtype {}", dtype.descr()))),
    };
    let shape = inner.shape();
    let &[rows, cols] = shape else {
        return Err(bad(format!("has shape {shape:?}, not 2-D")));
    };
    let size = |d: u64| usize::try_from(d).ok();
    let (Some(rows), Some(cols)) = (size(rows), size(cols)) else {
        return Err(bad(format!("has shape {shape:?}, too large")));
    };
    if rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(8))
        .is_none()
    {
        return Err(bad(format!("has shape {shape:?}, too large")));
    }
    if cols == 0 {
        return Err(bad("has vectors of dimension 0".into()));
    }
    Ok(Header {
        rows,
        cols,
        wide,
        inner,
    })
}

/// Every value of the matrix `header` describes, read from `reader` (after the
/// header), float64 values rounded to f32.
///
/// # Errors
/// When the data section is shorter or longer than the shape says, or cannot be
/// read; the message names `path` and the bytes the shape needs.
pub(crate) fn read_matrix(path: &Path, header: Header, reader: &mut dyn BufRead) -> Result<Matrix> {
    let (rows, cols) = (header.rows, header.cols);
    let n = rows * cols;
    let need = n * if header.wide { 8 } else { 4 };
    let wrong = |what: String| {
        anyhow!(
            "{}: shape ({rows}, {cols}) needs {need} bytes of data; the file {what}",
            path.display()
        )
    };
    let fortran = header.inner.order() == Order::Fortran;
    let file = NpyFile::with_header(header.inner, &mut *reader);
    let data: Box<dyn Iterator<Item = std::io::Result<f32>>> = if header.wide {
        Box::new(file.data::<f64>()?.map(|v| v.map(|v| v as f32)))
    } else {
        Box::new(file.data::<f32>()?)
    };
    // The header may promise more than the file holds: grow as values arrive.
    let mut values = Vec::with_capacity(n.min(1 << 24));
    for v in data {
        match v {
            Ok(v) => values.push(v),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(wrong(format!("ends after {} whole values", values.len())));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
    if reader.read(&mut [0u8])? != 0 {
        return Err(wrong("has more".into()));
    }
    Ok(Matrix {
        rows,
        cols,
        fortran,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file's bytes: header dict `dict`, then `data`.
    fn npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn read(bytes: &[u8]) -> Result<Matrix> {
        let path = Path::new("m.npy");
        let mut reader = bytes;
        let header = read_header(path, &mut reader)?;
        read_matrix(path, header, &mut reader)
    }

    fn err(bytes: &[u8]) -> String {
        format!("{:#}", read(bytes).err().expect("an error"))
    }

    #[test]
    fn float64_values_round_as_a_cast_in_either_order() {
        let values = [0.1, 1.0 / 3.0, 1e-40, -2.5e38, 7.0, f64::MIN_POSITIVE];
        let le: Vec<u8> = values.iter().flat_map(|v: &f64| v.to_le_bytes()).collect();
        for (order, fortran) in [("False", false), ("True", true)] {
            let dict = format!("{{'descr': '<f8', 'fortran_order': {order}, 'shape': (2, 3), }}");
            let m = read(&npy(&dict, &le)).unwrap();
            for i in 0..2 {
                for j in 0..3 {
                    let k = if fortran { j * 2 + i } else { i * 3 + j };
                    assert_eq!(m.get(i, j).to_bits(), (values[k] as f32).to_bits());
                }
            }
        }
        // Big-endian float32 reads too.
        let be: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect();
        let m = read(&npy(
            "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 2), }",
            &be,
        ));
        assert_eq!(m.unwrap().get(0, 1), -2.0);
    }

    #[test]
    fn wrong_headers_and_lengths_name_the_file_and_the_expected_matrix() {
        let f4 =
            |shape: &str| format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        let four = [0u8; 16];
        let e = err(&npy(
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }",
            &four,
        ));
        assert!(e.contains("m.npy") && e.contains("dtype '<i4'"), "{e}");
        assert!(
            e.contains("expected a 2-D float32 or float64 matrix"),
            "{e}"
        );
        let e = err(&npy(&f4("(2, 2, 1)"), &four));
        assert!(
            e.contains("m.npy") && e.contains("[2, 2, 1], not 2-D"),
            "{e}"
        );
        let e = err(&npy(&f4("(4, 0)"), &[]));
        assert!(e.contains("dimension 0"), "{e}");
        let e = err(&npy(&f4("(2, 2)"), &four[..15]));
        assert!(
            e.contains("m.npy") && e.contains("needs 16 bytes") && e.contains("after 3"),
            "{e}"
        );
        let e = err(&npy(&f4("(2, 2)"), &[0u8; 17]));
        assert!(
            e.contains("needs 16 bytes") && e.contains("has more"),
            "{e}"
        );
        // 2^62 values: more than any memory holds. (A shape whose
        // product overflows u64 makes npyz panic in debug builds; release wraps.)
        let e = err(&npy(&f4("(2147483648, 2147483648)"), &[]));
        assert!(e.contains("too large"), "{e}");
        let e = err(&npy("{'descr': '<f4', 'shape': (2, 2), }", &four));
        assert!(e.contains("m.npy: unreadable .npy header"), "{e}");
        assert!(err(b"word 1 2 3\n").contains("m.npy: not a .npy file"));
        assert!(err(b"\x93NU").contains("not a .npy file"));
    }
}
