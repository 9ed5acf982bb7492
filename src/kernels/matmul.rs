//! Dense f32 matrix products on row-major buffers, through the `gemm` crate (the one
//! candle itself uses), with the thread count candle uses.

/// A row-major-or-strided view of a matrix: element (r, c) is `data[r*rs + c*cs]`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The elements, with at least (rows−1)·rs + (cols−1)·cs + 1 of them.
    pub data: &'a [f32],
    /// Row stride in elements.
    pub rs: usize,
    /// Column stride in elements (1 for row-major, the row count for a transpose).
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
    dims: (usize, usize, usize),
    a: View,
    b: View,
    accumulate: bool,
    threads: usize,
) {
    gemm_into(dst, dims.1, dims, a, b, accumulate, threads)
}

/// As [`gemm()`], into a destination whose rows are `ldd` (>= n) long: the product
/// fills the first n columns of each row.
pub fn gemm_into(
    dst: &mut [f32],
    ldd: usize,
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
            for row in dst.chunks_mut(ldd).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // Bounds the raw-pointer call below: the last element each view touches.
    assert!(ldd >= n && dst.len() >= (m - 1) * ldd + n);
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
            ldd as isize,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A product into columns 2..5 of 7-wide rows leaves the other columns alone,
    /// with and without accumulation, and through a transposed operand.
    #[test]
    fn gemm_into_writes_only_its_columns() {
        let (m, n, k, ldd) = (4, 3, 5, 7);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        // b stored transposed: element (kk, j) at bt[j * k + kk].
        let bt: Vec<f32> = (0..n * k).map(|i| (i % 7) as f32 - 2.0).collect();
        let want =
            |r: usize, j: usize| -> f32 { (0..k).map(|kk| a[r * k + kk] * bt[j * k + kk]).sum() };
        for accumulate in [false, true] {
            let mut dst = vec![1.0f32; m * ldd];
            gemm_into(
                &mut dst[2..],
                ldd,
                (m, n, k),
                View::rows(&a, k),
                View::transposed(&bt, k),
                accumulate,
                1,
            );
            for r in 0..m {
                for c in 0..ldd {
                    let got = dst[r * ldd + c];
                    let expected = match c {
                        2..=4 => want(r, c - 2) + if accumulate { 1.0 } else { 0.0 },
                        _ => 1.0,
                    };
                    assert!(
                        (got - expected).abs() < 1e-4,
                        "({r},{c}) accumulate={accumulate}: {got} vs {expected}"
                    );
                }
            }
        }
    }
}
