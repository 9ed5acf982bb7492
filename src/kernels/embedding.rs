//! Embedding lookup with a row-wise (sparse) gradient: the backward pass does not
//! build the dense (vocabulary × dim) gradient candle's `index_select` would (a
//! zero-filled table plus an add, at every step, for the few hundred rows a batch
//! touches); it hands the touched rows and their summed gradients to the
//! optimizer through a shared slot instead (`train.sparse_embedding`).

use candle_core::{bail, CpuStorage, CustomOp1, InplaceOp1, Layout, Result, Shape, Tensor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The gradient of an embedding table restricted to the rows a batch used:
/// `ids` sorted and distinct, `grads` their rows (ids.len() × dim), summed over
/// every position where the word occurs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseRows {
    /// Row indices into the embedding table, sorted ascending, no repeats.
    pub ids: Vec<u32>,
    /// The rows' gradients, row-major (ids.len(), dim).
    pub grads: Vec<f32>,
    /// Embedding width: the length of one row.
    pub dim: usize,
}

impl SparseRows {
    /// Sum of squared gradient values (for clipping by global norm).
    pub fn sum_sq(&self) -> f64 {
        self.grads.iter().map(|&g| (g as f64) * (g as f64)).sum()
    }

    /// Multiplies every gradient value by `coef`.
    pub fn scale(&mut self, coef: f64) {
        let c = coef as f32;
        self.grads.iter_mut().for_each(|g| *g *= c);
    }

    /// Adds `other` (row sets merged, shared rows summed).
    fn merge(&mut self, other: SparseRows) {
        let dim = self.dim.max(other.dim);
        let mut rows: BTreeMap<u32, Vec<f32>> = BTreeMap::new();
        for part in [std::mem::take(self), other] {
            for (id, row) in part.ids.iter().zip(part.grads.chunks_exact(part.dim)) {
                let acc = rows.entry(*id).or_insert_with(|| vec![0.0; row.len()]);
                acc.iter_mut().zip(row).for_each(|(a, g)| *a += g);
            }
        }
        *self = SparseRows {
            ids: rows.keys().copied().collect(),
            grads: rows.into_values().flatten().collect(),
            dim,
        };
    }
}

/// Where a lookup's backward pass leaves its rows until the optimizer takes them.
pub type SparseSlot = Arc<Mutex<Option<SparseRows>>>;

/// The lookup op: `table` (V × dim) → (ids.len() × dim).
struct Lookup {
    ids: Vec<u32>,
    slot: SparseSlot,
}

impl CustomOp1 for Lookup {
    fn name(&self) -> &'static str {
        "sparse-embedding"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = s else {
            bail!("sparse embedding: the table must be f32");
        };
        let Some((a, b)) = l.contiguous_offsets() else {
            bail!("sparse embedding: the table must be contiguous");
        };
        let (v, dim) = l.shape().dims2()?;
        let table = &data[a..b];
        let mut out = Vec::with_capacity(self.ids.len() * dim);
        for &id in &self.ids {
            let id = id as usize;
            if id >= v {
                bail!("sparse embedding: id {id} outside a vocabulary of {v}");
            }
            out.extend_from_slice(&table[id * dim..(id + 1) * dim]);
        }
        Ok((CpuStorage::F32(out), Shape::from((self.ids.len(), dim))))
    }

    fn bwd(&self, _table: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let (_, dim) = grad.dims2()?;
        let grad: Vec<f32> = grad.flatten_all()?.to_vec1()?;
        // Positions of each distinct id, then one summed row per id.
        let mut order: Vec<usize> = (0..self.ids.len()).collect();
        order.sort_by_key(|&p| self.ids[p]);
        let mut rows = SparseRows {
            ids: Vec::new(),
            grads: Vec::new(),
            dim,
        };
        for p in order {
            let id = self.ids[p];
            if rows.ids.last() != Some(&id) {
                rows.ids.push(id);
                rows.grads.extend(std::iter::repeat_n(0.0, dim));
            }
            let at = rows.grads.len() - dim;
            let src = &grad[p * dim..(p + 1) * dim];
            rows.grads[at..]
                .iter_mut()
                .zip(src)
                .for_each(|(a, g)| *a += g);
        }
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
        match slot.as_mut() {
            Some(existing) => existing.merge(rows),
            None => *slot = Some(rows),
        }
        // The table gets no dense gradient: the optimizer takes the rows from the slot.
        Ok(None)
    }
}

/// Rows `ids` of the CPU f32 `table` (V × dim) as an (ids.len() × dim) tensor whose
/// backward pass leaves the table's row gradients in `slot`.
pub fn sparse_lookup(table: &Tensor, ids: Vec<u32>, slot: &SparseSlot) -> Result<Tensor> {
    table.apply_op1_arc(Arc::new(Box::new(Lookup {
        ids,
        slot: slot.clone(),
    })))
}

/// An update of one row: (row of θ, its gradient, the row's index).
pub type RowUpdate<'a> = dyn FnMut(&mut [f32], &[f32], usize) + 'a;

/// Applies `update` to each row of the CPU f32 tensor `theta` (V × dim) that
/// `rows` names, in place.
pub fn update_rows(theta: &Tensor, rows: &SparseRows, update: &mut RowUpdate) -> Result<()> {
    struct Rows<'a, 'b> {
        rows: &'a SparseRows,
        update: Mutex<&'a mut RowUpdate<'b>>,
    }
    impl InplaceOp1 for Rows<'_, '_> {
        fn name(&self) -> &'static str {
            "sparse-embedding-update"
        }
        fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> Result<()> {
            let CpuStorage::F32(data) = s else {
                bail!("sparse update: the table must be f32");
            };
            let Some((a, b)) = l.contiguous_offsets() else {
                bail!("sparse update: the table must be contiguous");
            };
            let (v, dim) = l.shape().dims2()?;
            if dim != self.rows.dim {
                bail!(
                    "sparse update: rows of {} for a table of {dim}",
                    self.rows.dim
                );
            }
            let table = &mut data[a..b];
            let mut update = self
                .update
                .lock()
                .map_err(|_| candle_core::Error::Msg("poisoned".into()))?;
            for (&id, g) in self.rows.ids.iter().zip(self.rows.grads.chunks_exact(dim)) {
                let id = id as usize;
                if id >= v {
                    bail!("sparse update: row {id} outside a table of {v}");
                }
                (*update)(&mut table[id * dim..(id + 1) * dim], g, id);
            }
            Ok(())
        }
    }
    theta.inplace_op1(&Rows {
        rows,
        update: Mutex::new(update),
    })
}
