//! Branch-free exp, sigmoid and tanh that the compiler vectorises (libm's `expf` is a
//! call per element and would dominate the recurrence). Relative error about 2e-7.

/// e^x for f32, by range reduction x = n·ln2 + r and a degree-6 polynomial for e^r.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer that lands in the low mantissa bits.
    // Float-to-int casts (`as i32`, `round`) would be scalarised by the vectoriser.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(std::f32::consts::LOG2_E, SHIFT);
    let n = t - SHIFT;
    // ln2 split in two so r keeps full precision.
    let r = n.mul_add(-0.693_145_75, x);
    let r = n.mul_add(-1.428_606_8e-6, r);
    let p = 1.987_569_1e-4_f32;
    let p = p.mul_add(r, 1.398_2e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 0.166_666_66);
    let p = p.mul_add(r, 0.5);
    let p = p.mul_add(r * r, r) + 1.0;
    // n = t's bits − SHIFT's bits (n is in [-126, 127] after the clamp): 2^n's bits.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127) << 23);
    p * scale
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh(x) = sign(x)·(1 − e^{−2|x|}) / (1 + e^{−2|x|}); near 0 the odd polynomial
/// keeps the relative error small where the subtraction would cancel.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let e = exp(-2.0 * a);
    let big = (1.0 - e) / (1.0 + e);
    let x2 = x * x;
    // Taylor series to x^9: exact to f32 precision for |x| < 0.0625... up to ~0.1.
    let small = a
        * (1.0
            + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let t = if a < 0.1 { small } else { big };
    t.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_to_std() {
        let mut worst = [0f64; 3];
        for i in -20000..=20000 {
            let x = i as f32 * 0.001;
            let pairs = [
                (exp(x) as f64, (x as f64).exp()),
                (sigmoid(x) as f64, 1.0 / (1.0 + (-x as f64).exp())),
                (tanh(x) as f64, (x as f64).tanh()),
            ];
            for (w, (got, want)) in worst.iter_mut().zip(pairs) {
                let rel = (got - want).abs() / want.abs().max(1e-30);
                *w = w.max(rel);
            }
        }
        assert!(
            worst.iter().all(|&w| w < 2e-6),
            "worst relative errors {worst:?}"
        );
        assert_eq!(tanh(-100.0), -1.0);
        assert!(sigmoid(-200.0) < 1e-30);
        assert!(exp(-200.0) >= 0.0);
    }
}
