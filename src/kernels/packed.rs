//! The small product the recurrence runs at every step, (B × K) · (K × N) with
//! B ≈ 64, K = H, N = G·H: the right-hand matrix is a weight that stays the same for
//! all steps, so it is packed once per sequence into column panels and every step
//! runs a register-blocked kernel over it (a general GEMM would re-pack the weight
//! at every step). Compiled for AVX-512 or AVX2+FMA and chosen at run time; other
//! CPUs use the `gemm` crate.

// Register-blocked loops read clearest with explicit row and column indices.
#![allow(clippy::needless_range_loop)]

use super::matmul::{gemm, View};

/// Columns per panel: two AVX-512 registers (AVX2 runs it as two 16-column halves).
const NR: usize = 32;

/// A (K × N) matrix packed as ⌈N/NR⌉ panels of K rows × NR columns, zero-padded.
pub struct Packed {
    k: usize,
    n: usize,
    data: Vec<f32>,
    /// The matrix unpacked row-major, for CPUs without the fast kernel (empty
    /// otherwise; `data` is empty on those).
    plain: Vec<f32>,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
enum Kind {
    Generic,
    Avx2,
    Avx512,
}

fn detect() -> Kind {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Kind::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Kind::Avx2;
        }
    }
    Kind::Generic
}

impl Packed {
    /// Packs `m`, read through its strides, as a (k × n) matrix.
    pub fn new(m: View, k: usize, n: usize) -> Self {
        Self::with_kind(m, k, n, detect())
    }

    fn with_kind(m: View, k: usize, n: usize, kind: Kind) -> Self {
        let at = |kk: usize, j: usize| m.data[kk * m.rs + j * m.cs];
        if kind == Kind::Generic {
            let mut plain = vec![0f32; k * n];
            for kk in 0..k {
                for j in 0..n {
                    plain[kk * n + j] = at(kk, j);
                }
            }
            return Self {
                k,
                n,
                data: Vec::new(),
                plain,
                kind,
            };
        }
        let panels = n.div_ceil(NR);
        let mut data = vec![0f32; panels * k * NR];
        // Inference packs at every call: walk the source in its memory order.
        if m.rs == 1 {
            for j in 0..n {
                for kk in 0..k {
                    data[(j / NR) * k * NR + kk * NR + j % NR] = at(kk, j);
                }
            }
        } else {
            for kk in 0..k {
                for j in 0..n {
                    data[(j / NR) * k * NR + kk * NR + j % NR] = at(kk, j);
                }
            }
        }
        Self {
            k,
            n,
            data,
            plain: Vec::new(),
            kind,
        }
    }

    /// `out` (rows × n, row-major) = a (rows × k, row-major).
    pub fn mul(&self, a: &[f32], rows: usize, out: &mut [f32]) {
        let (k, n) = (self.k, self.n);
        assert!(a.len() >= rows * k && out.len() >= rows * n);
        match self.kind {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the features were detected at run time.
            Kind::Avx512 => unsafe { mul_avx512(self, a, rows, out) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above.
            Kind::Avx2 => unsafe { mul_avx2(self, a, rows, out) },
            _ => gemm(
                out,
                (rows, n, k),
                View::rows(a, k),
                View::rows(&self.plain, n),
                false,
                1,
            ),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn mul_avx512(p: &Packed, a: &[f32], rows: usize, out: &mut [f32]) {
    use std::arch::x86_64::*;
    const MR: usize = 8;
    let (k, n) = (p.k, p.n);
    let mut tile = [0f32; MR * NR];
    for (pi, panel) in p.data.chunks_exact(k * NR).enumerate() {
        let c0 = pi * NR;
        let cols = (n - c0).min(NR);
        let mut r0 = 0;
        while r0 < rows {
            let mr = (rows - r0).min(MR);
            // Rows past the end repeat the last one (computed, not written).
            let rp: [*const f32; MR] =
                std::array::from_fn(|r| a[(r0 + r.min(mr - 1)) * k..].as_ptr());
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            let mut w = panel.as_ptr();
            for kk in 0..k {
                let w0 = _mm512_loadu_ps(w);
                let w1 = _mm512_loadu_ps(w.add(16));
                for r in 0..MR {
                    let av = _mm512_set1_ps(*rp[r].add(kk));
                    acc[r][0] = _mm512_fmadd_ps(av, w0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(av, w1, acc[r][1]);
                }
                w = w.add(NR);
            }
            for r in 0..MR {
                _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR), acc[r][0]);
                _mm512_storeu_ps(tile.as_mut_ptr().add(r * NR + 16), acc[r][1]);
            }
            for r in 0..mr {
                out[(r0 + r) * n + c0..][..cols].copy_from_slice(&tile[r * NR..][..cols]);
            }
            r0 += mr;
        }
    }
}

/// Depth of one pass over a panel: 128 rows of a 16-column half-panel are 8 KB,
/// which stay in L1 while every row block of `a` runs over them.
const KC: usize = 128;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn mul_avx2(p: &Packed, a: &[f32], rows: usize, out: &mut [f32]) {
    const HALF: usize = NR / 2;
    let (k, n) = (p.k, p.n);
    for k0 in (0..k).step_by(KC) {
        let kc = (k - k0).min(KC);
        for (pi, panel) in p.data.chunks_exact(k * NR).enumerate() {
            for half in 0..2 {
                let c0 = pi * NR + half * HALF;
                if c0 >= n {
                    break;
                }
                let tile = Tile {
                    w: panel[k0 * NR + half * HALF..].as_ptr(),
                    kc,
                    k,
                    cols: (n - c0).min(HALF),
                    n,
                    accumulate: k0 > 0,
                };
                let mut r0 = 0;
                while r0 < rows {
                    let (a, o) = (a[r0 * k + k0..].as_ptr(), out[r0 * n + c0..].as_mut_ptr());
                    // Six rows at a time, then the rest in one smaller block.
                    r0 += match rows - r0 {
                        6.. => block_avx2::<6>(&tile, a, o),
                        5 => block_avx2::<5>(&tile, a, o),
                        4 => block_avx2::<4>(&tile, a, o),
                        3 => block_avx2::<3>(&tile, a, o),
                        2 => block_avx2::<2>(&tile, a, o),
                        _ => block_avx2::<1>(&tile, a, o),
                    };
                }
            }
        }
    }
}

/// One pass of `block_avx2`: `kc` rows of a half-panel starting at `w`, for
/// `cols` output columns; `k` and `n` are the row lengths of `a` and `out`.
struct Tile {
    w: *const f32,
    kc: usize,
    k: usize,
    cols: usize,
    n: usize,
    /// Add to `out` (a later depth pass) instead of overwriting it.
    accumulate: bool,
}

/// MR rows × 16 columns: 2·MR accumulators, 2 weight registers and 1 broadcast
/// fit AVX2's 16 registers for MR ≤ 6 (a 3 × 32 block needs 17 and spills).
/// Returns MR.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn block_avx2<const MR: usize>(t: &Tile, a: *const f32, out: *mut f32) -> usize {
    use std::arch::x86_64::*;
    let mut buf = [0f32; 16];
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    if t.accumulate {
        for (r, acc) in acc.iter_mut().enumerate() {
            let o = out.add(r * t.n);
            let src = if t.cols == 16 {
                o as *const f32
            } else {
                std::ptr::copy_nonoverlapping(o, buf.as_mut_ptr(), t.cols);
                buf.as_ptr()
            };
            *acc = [_mm256_loadu_ps(src), _mm256_loadu_ps(src.add(8))];
        }
    }
    let mut w = t.w;
    for kk in 0..t.kc {
        let w0 = _mm256_loadu_ps(w);
        let w1 = _mm256_loadu_ps(w.add(8));
        for (r, acc) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*a.add(r * t.k + kk));
            acc[0] = _mm256_fmadd_ps(av, w0, acc[0]);
            acc[1] = _mm256_fmadd_ps(av, w1, acc[1]);
        }
        w = w.add(NR);
    }
    for (r, acc) in acc.iter().enumerate() {
        let o = out.add(r * t.n);
        if t.cols == 16 {
            _mm256_storeu_ps(o, acc[0]);
            _mm256_storeu_ps(o.add(8), acc[1]);
        } else {
            _mm256_storeu_ps(buf.as_mut_ptr(), acc[0]);
            _mm256_storeu_ps(buf.as_mut_ptr().add(8), acc[1]);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), o, t.cols);
        }
    }
    MR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_plain_product() {
        let kinds = [detect(), Kind::Avx2, Kind::Generic];
        for kind in kinds
            .into_iter()
            .filter(|&k| k == Kind::Generic || k >= detect_floor())
        {
            check(kind);
        }
    }

    /// The slowest fast kernel this CPU can run.
    fn detect_floor() -> Kind {
        if detect() == Kind::Generic {
            Kind::Generic
        } else {
            Kind::Avx2
        }
    }

    fn check(kind: Kind) {
        for (rows, k, n) in [
            (64, 128, 512),
            (32, 512, 128),
            (1, 3, 5),
            (13, 37, 111),
            (9, 8, 33),
            (7, 300, 40),
        ] {
            let a: Vec<f32> = (0..rows * k)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0)
                .collect();
            // Stored transposed, as W_hh is for the forward product.
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 9.0)
                .collect();
            let packed = Packed::with_kind(View::transposed(&w, k), k, n, kind);
            let mut out = vec![0f32; rows * n];
            packed.mul(&a, rows, &mut out);
            for r in 0..rows {
                for j in 0..n {
                    let want: f32 = (0..k).map(|kk| a[r * k + kk] * w[j * k + kk]).sum();
                    assert!(
                        (out[r * n + j] - want).abs() < 1e-4,
                        "({r},{j}) of {rows}x{k}x{n}"
                    );
                }
            }
        }
    }
}
