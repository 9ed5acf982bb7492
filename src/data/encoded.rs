//! Encoded splits in flat arrays: all token ids of a split in one array (u16 when the
//! vocabulary fits, else u32), an offsets array and the labels. The arrays are either
//! owned or slices of a memory-mapped cache file, so a cached dataset of millions of
//! rows loads without copying and batches read their rows straight from the map.

use memmap2::Mmap;
use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Plain little-endian numbers that can be viewed in place in a mapped file.
pub trait Scalar: bytemuck::Pod + Default + Copy + PartialEq + fmt::Debug + Send + Sync {
    /// The value of `size_of::<Self>()` little-endian bytes.
    fn from_le(bytes: &[u8]) -> Self;
    /// The values as little-endian bytes (borrowed on little-endian hosts).
    fn le_bytes(values: &[Self]) -> Cow<'_, [u8]>;
}
macro_rules! scalar {
    ($($t:ty),*) => {$(
        impl Scalar for $t {
            fn from_le(bytes: &[u8]) -> Self {
                let mut b = [0u8; std::mem::size_of::<$t>()];
                b.copy_from_slice(bytes);
                <$t>::from_le_bytes(b)
            }
            fn le_bytes(values: &[Self]) -> Cow<'_, [u8]> {
                if cfg!(target_endian = "little") {
                    Cow::Borrowed(bytemuck::cast_slice(values))
                } else {
                    Cow::Owned(values.iter().flat_map(|v| v.to_le_bytes()).collect())
                }
            }
        }
    )*};
}
scalar!(u16, u32, u64);

/// A read-only array, owned or borrowed from a mapped file; derefs to `[T]`.
/// Mutating (`push`) a mapped column first copies it (copy on write).
#[derive(Clone)]
pub struct Column<T: Scalar>(Repr<T>);

#[derive(Clone)]
enum Repr<T> {
    Owned(Vec<T>),
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
    },
}

impl<T: Scalar> Column<T> {
    /// `len` values of `T` at byte `start` of `map`. The caller checked that the range
    /// lies inside the map; a misaligned start (never produced by lab's layout) or a
    /// big-endian host gets a copy instead of a view.
    pub(crate) fn mapped(map: &Arc<Mmap>, start: usize, len: usize) -> Column<T> {
        let size = std::mem::size_of::<T>();
        let bytes = &map[start..start + len * size];
        if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, T>(bytes).is_ok() {
            Column(Repr::Mapped {
                map: map.clone(),
                start,
                len,
            })
        } else {
            Column(Repr::Owned(
                bytes.chunks_exact(size).map(T::from_le).collect(),
            ))
        }
    }

    /// Whether the values live in a mapped file (not copied into memory).
    /// Whether the values are viewed in a mapped file (not copied into memory).
    pub fn is_mapped(&self) -> bool {
        matches!(self.0, Repr::Mapped { .. })
    }

    /// Appends a value (copying a mapped column into memory first).
    pub fn push(&mut self, value: T) {
        self.to_mut().push(value);
    }

    fn to_mut(&mut self) -> &mut Vec<T> {
        if let Repr::Mapped { .. } = self.0 {
            self.0 = Repr::Owned(self.deref().to_vec());
        }
        match &mut self.0 {
            Repr::Owned(v) => v,
            Repr::Mapped { .. } => unreachable!("converted above"),
        }
    }
}

impl<T: Scalar> Deref for Column<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.0 {
            Repr::Owned(v) => v,
            Repr::Mapped { map, start, len } => {
                let size = std::mem::size_of::<T>();
                // Checked in `mapped`: in range, aligned, little endian.
                bytemuck::cast_slice(&map[*start..*start + len * size])
            }
        }
    }
}

impl<'a, T: Scalar> IntoIterator for &'a Column<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<T: Scalar> Default for Column<T> {
    fn default() -> Self {
        Column(Repr::Owned(Vec::new()))
    }
}

impl<T: Scalar> From<Vec<T>> for Column<T> {
    fn from(v: Vec<T>) -> Self {
        Column(Repr::Owned(v))
    }
}

impl<T: Scalar> PartialEq for Column<T> {
    fn eq(&self, other: &Self) -> bool {
        self.deref() == other.deref()
    }
}

impl<T: Scalar> fmt::Debug for Column<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 16;
        let v = self.deref();
        write!(f, "{:?}", &v[..v.len().min(SHOWN)])?;
        if v.len() > SHOWN {
            write!(f, " (+{} more)", v.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// All token ids of a split, in one array of the narrowest width that holds them.
#[derive(Clone, PartialEq)]
pub(crate) enum Ids {
    U16(Column<u16>),
    U32(Column<u32>),
}

impl Ids {
    fn get(&self, at: usize) -> u32 {
        match self {
            Ids::U16(c) => c[at] as u32,
            Ids::U32(c) => c[at],
        }
    }
    fn copy(&self, range: std::ops::Range<usize>, out: &mut [u32]) {
        match self {
            Ids::U16(c) => {
                for (o, &v) in out.iter_mut().zip(&c[range]) {
                    *o = v as u32;
                }
            }
            Ids::U32(c) => out.copy_from_slice(&c[range]),
        }
    }
    pub(crate) fn width(&self) -> usize {
        match self {
            Ids::U16(_) => 2,
            Ids::U32(_) => 4,
        }
    }
}

/// One split, encoded: row `i` is `ids[offsets[i]..offsets[i + 1]]` with label
/// `labels[i]`. Rows made by lab's pipeline hold at least one id and at most max_len.
#[derive(Clone)]
pub struct Split {
    pub(crate) ids: Ids,
    /// `len() + 1` entries, starting at 0, non-decreasing.
    pub(crate) offsets: Column<u64>,
    /// Class index of each row.
    pub labels: Column<u32>,
    /// Where each row came from: the index of its record among the data
    /// file's records (0 = the first data record). Empty when unknown (a
    /// split not built from a file).
    pub(crate) sources: Column<u32>,
    /// A stable hash of each row's text as read (before cleaning): the first 8
    /// bytes of its sha256, little endian. Empty when unknown.
    pub(crate) hashes: Column<u64>,
}

impl Default for Split {
    fn default() -> Self {
        Split {
            ids: Ids::U32(Column::default()),
            offsets: vec![0].into(),
            labels: Column::default(),
            sources: Column::default(),
            hashes: Column::default(),
        }
    }
}

impl Split {
    /// An owned split from rows of ids and their labels (as many as rows).
    ///
    /// # Panics
    /// When `rows` and `labels` differ in length.
    pub fn from_rows(rows: &[Vec<u32>], labels: Vec<u32>) -> Split {
        assert_eq!(rows.len(), labels.len(), "one label per row");
        let ids: Vec<u32> = rows.iter().flatten().copied().collect();
        let mut offsets = Vec::with_capacity(rows.len() + 1);
        offsets.push(0);
        let mut at = 0u64;
        for r in rows {
            at += r.len() as u64;
            offsets.push(at);
        }
        Split {
            ids: Ids::U32(ids.into()),
            offsets: offsets.into(),
            labels: labels.into(),
            sources: Column::default(),
            hashes: Column::default(),
        }
    }

    /// Each row's record index in the data file and the hash of its text
    /// (`row_hash`), when the split was built from a file; `None` when unknown.
    pub fn origins(&self) -> Option<(&[u32], &[u64])> {
        (self.sources.len() == self.len() && self.hashes.len() == self.len())
            .then_some((&self.sources[..], &self.hashes[..]))
    }

    /// Append one row (copying the split into memory first if it was mapped).
    /// The split's origins become unknown.
    pub fn push(&mut self, ids: &[u32], label: u32) {
        self.sources = Column::default();
        self.hashes = Column::default();
        self.ids_mut().extend_from_slice(ids);
        let end = self.offsets.last().copied().unwrap_or(0) + ids.len() as u64;
        self.offsets.push(end);
        self.labels.push(label);
    }

    /// The ids as an owned u32 array (widening u16 ids), for appending.
    fn ids_mut(&mut self) -> &mut Vec<u32> {
        if let Ids::U16(c) = &self.ids {
            self.ids = Ids::U32(c.iter().map(|&v| v as u32).collect::<Vec<_>>().into());
        }
        match &mut self.ids {
            Ids::U32(c) => c.to_mut(),
            Ids::U16(_) => unreachable!("widened above"),
        }
    }

    /// Rows in the split.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the split has no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i] as usize..self.offsets[i + 1] as usize
    }

    /// Number of ids in row `i`.
    pub fn row_len(&self, i: usize) -> usize {
        self.range(i).len()
    }

    /// The ids of row `i` (borrowed when stored as u32).
    pub fn row(&self, i: usize) -> Cow<'_, [u32]> {
        let r = self.range(i);
        match &self.ids {
            Ids::U32(c) => Cow::Borrowed(&c[r]),
            Ids::U16(c) => Cow::Owned(c[r].iter().map(|&v| v as u32).collect()),
        }
    }

    /// Id `j` of row `i`.
    pub fn id(&self, i: usize, j: usize) -> u32 {
        self.ids.get(self.offsets[i] as usize + j)
    }

    /// Copy row `i` into `out`, which must be exactly `row_len(i)` long.
    pub fn copy_row(&self, i: usize, out: &mut [u32]) {
        self.ids.copy(self.range(i), out)
    }

    /// Every row's ids, in order.
    pub fn rows(&self) -> impl Iterator<Item = Cow<'_, [u32]>> + '_ {
        (0..self.len()).map(|i| self.row(i))
    }

    /// Total number of ids.
    pub fn tokens(&self) -> usize {
        self.offsets.last().copied().unwrap_or(0) as usize
    }

    /// Bytes per stored id: 2 (u16) or 4 (u32).
    pub fn id_width(&self) -> usize {
        self.ids.width()
    }

    /// Whether the ids are read from a memory-mapped cache file.
    pub fn is_mapped(&self) -> bool {
        match &self.ids {
            Ids::U16(c) => c.is_mapped(),
            Ids::U32(c) => c.is_mapped(),
        }
    }
}

/// Splits are equal when their rows and labels are, however they are stored.
impl PartialEq for Split {
    fn eq(&self, other: &Self) -> bool {
        self.labels == other.labels
            && self.len() == other.len()
            && (0..self.len()).all(|i| self.row(i) == other.row(i))
    }
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 4;
        let rows: Vec<_> = self.rows().take(SHOWN).collect();
        f.debug_struct("Split")
            .field("rows", &self.len())
            .field("tokens", &self.tokens())
            .field("id_width", &self.id_width())
            .field("mapped", &self.is_mapped())
            .field("first_rows", &rows)
            .field("labels", &self.labels)
            .finish()
    }
}

/// The stable hash of a row's text as read: the first 8 bytes of its sha256,
/// little endian. It tells whether a record still holds the text a prediction
/// was made for.
pub fn row_hash(text: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}
