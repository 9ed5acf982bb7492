//! Dense f32 matrix products on row-major buffers, through the `gemm` crate (the one
//! candle itself uses), with the thread count candle uses.

/// A row-major-or-strided view of a matrix: element (r, c) is `data[r*rs + c*cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> View<'a> {
    /// A row-major (rows, cols) matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: cols,
            cs: 1,
        }
    }
    /// The transpose of a row-major matrix with `cols` columns.
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

/// `dst` (m, n) row-major, with `dims` = (m, n, k), = a (m, k) · b (k, n), added to `dst` when `accumulate`.
/// `threads` > 1 splits the product across rayon's pool.
pub fn gemm(
    dst: &mut [f32],
    (m, n, k): (usize, usize, usize),
    a: View,
    b: View,
    accumulate: bool,
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    // Bounds the raw-pointer call below: the last element each view touches.
    assert!(dst.len() >= m * n);
    assert!(a.data.len() > (m - 1) * a.rs + (k - 1) * a.cs);
    assert!(b.data.len() > (k - 1) * b.rs + (n - 1) * b.cs);
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above keep every index the product touches in bounds.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            par,
        )
    }
}

/// Candle's CPU thread count (`RAYON_NUM_THREADS` / `CANDLE_NUM_THREADS` aware).
pub fn threads() -> usize {
    candle_core::utils::get_num_threads().max(1)
}
