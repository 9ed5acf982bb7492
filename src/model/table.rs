//! An inference shortcut for the first recurrent layer, whose input is the
//! embedding: the input projection of every vocabulary word, E·W_ihᵀ, computed
//! once and reused while the weights stay the same, instead of projecting every
//! batch's tokens again. Whether they stayed the same is checked at every use by
//! a hash of their values, so no code path that changes weights (an optimizer
//! step, a restored checkpoint, early stopping's best weights) can leave a stale
//! table behind.

use candle_core::{bail, CpuStorage, Result, Storage, Tensor};
use rayon::prelude::*;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

/// Batches with fewer tokens project them directly: below this, hashing the
/// weights costs about as much as the product it saves (a single request in
/// `lab serve`, say).
pub(crate) const MIN_TOKENS: usize = 1024;
/// The largest table kept per direction, in floats (128 MB): 65,536 words at
/// G·H = 512.
const MAX_FLOATS: usize = 1 << 25;

/// Tables by direction of the first layer, each with the hash of the weights it
/// was computed from.
#[derive(Default)]
pub(crate) struct ProjectionTables(Mutex<HashMap<usize, (u64, Tensor)>>);

impl ProjectionTables {
    /// The (V, G·H) tables E·W_ihᵀ, one per direction, from the detached CPU f32
    /// `embedding` (V, I) and each direction's `w_ih` (G·H, I); `None` when they
    /// would be too large. The embedding is hashed once for all directions.
    pub(crate) fn get(&self, embedding: &Tensor, w_ih: &[Tensor]) -> Result<Option<Vec<Tensor>>> {
        let (v, _) = embedding.dims2()?;
        let mut gh = 0;
        for w in w_ih {
            gh = gh.max(w.dim(0)?);
        }
        if v * gh > MAX_FLOATS {
            return Ok(None);
        }
        let words = content_hash(&[embedding])?;
        let mut tables = self
            .0
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        let mut out = Vec::with_capacity(w_ih.len());
        for (d, w) in w_ih.iter().enumerate() {
            let key = content_hash(&[w])? ^ words.rotate_left(1);
            let table = match tables.get(&d) {
                Some((k, table)) if *k == key => table.clone(),
                _ => {
                    let table = embedding.matmul(&w.t()?)?.contiguous()?;
                    tables.insert(d, (key, table.clone()));
                    table
                }
            };
            out.push(table);
        }
        Ok(Some(out))
    }
}

fn state() -> foldhash::quality::FixedState {
    foldhash::quality::FixedState::with_seed(0x1ab)
}

/// A 64-bit hash of the values (and sizes) of CPU f32 tensors.
fn content_hash(tensors: &[&Tensor]) -> Result<u64> {
    let mut hasher = state().build_hasher();
    for t in tensors {
        let t = t.contiguous()?;
        let (storage, layout) = t.storage_and_layout();
        let (Storage::Cpu(CpuStorage::F32(data)), Some((a, b))) =
            (&*storage, layout.contiguous_offsets())
        else {
            bail!("projection table: CPU f32 weights only");
        };
        let values = &data[a..b];
        // Fixed-size pieces hashed on all threads, their hashes combined in order:
        // the same value whatever the thread count (hashing the 8 MB embedding on
        // one thread was 3% of an inference batch).
        let pieces: Vec<u64> = values
            .par_chunks(1 << 18)
            .map(|piece| {
                // SAFETY: any f32 slice may be read as its bytes.
                let bytes = unsafe {
                    std::slice::from_raw_parts(piece.as_ptr().cast::<u8>(), piece.len() * 4)
                };
                let mut h = state().build_hasher();
                h.write(bytes);
                h.finish()
            })
            .collect();
        for piece in pieces {
            hasher.write_u64(piece);
        }
        hasher.write_usize(values.len());
    }
    Ok(hasher.finish())
}
