//! e^x and σ(z) with a short latency, for per-sample SGD's row-to-row chain: [`ExpTable`].
//!
//! Each row's update feeds the next row's logit, so an SGD epoch runs at the latency of σ, not
//! at its throughput. The library's `exp` is a call (the weights held in registers are saved
//! around it), and the full passes' inline `exp` (fdlibm's) has a division of its own, in
//! series with σ's. This one is glibc's method without the call: x = (128k + j)·ln 2/128 + r
//! with |r| ≤ ln 2/256, so e^x = 2^k · 2^(j/128) · e^r, 2^(j/128) from a table of 128 and e^r
//! from its Taylor polynomial to r⁵ (the first term left out is below 2⁻⁶⁰ of the result).
//! Within one unit in the last place of `f64::exp` (a test holds it there).
//!
//! It is written with `mul_add`, which is one instruction where the CPU has FMA (every x86-64
//! since 2013, every aarch64) and a correctly rounded library call elsewhere: slower there, but
//! the same result bit for bit, so a seed trains the same model on any machine.

use std::sync::LazyLock;

/// 2^(j/128) for j in 0..128.
#[derive(Debug)]
pub(crate) struct ExpTable {
    powers: [f64; 128],
}

static TABLE: LazyLock<ExpTable> =
    // j/128 is exact, and the library's exp2 is within half a unit of 2^(j/128) there: each
    // entry is the double nearest the power, or next to it.
    LazyLock::new(|| ExpTable { powers: std::array::from_fn(|j| (j as f64 / 128.0).exp2()) });

impl ExpTable {
    /// The table, made on first use.
    pub(crate) fn get() -> &'static ExpTable {
        &TABLE
    }

    /// e^x for x ≤ 0 (and NaN). Below −708, where e^x leaves the normal numbers, it gives
    /// e^−708 ≈ 3.3e−308: σ needs no more (1 + e^−708 is 1).
    #[inline(always)]
    pub(crate) fn exp_nonpositive(&self, x: f64) -> f64 {
        // 1.5·2⁵²: adding it rounds to the nearest integer, which its low bits then hold.
        const ROUNDER: f64 = 6_755_399_441_055_744.0;
        const PER_LN2: f64 = 184.664_965_233_787_3; // 128 / ln 2
        // ln 2 / 128 in two parts: the first has 21 significant bits, so n · HI is exact for
        // any n this sees (|n| < 2¹⁷).
        const LN2_128_HI: f64 = 0.005_415_208_637_714_386;
        const LN2_128_LO: f64 = 3.710_410_186_743_494e-9;
        // The comparison leaves a NaN as it is.
        let x = if x < -708.0 { -708.0 } else { x };
        let shifted = x.mul_add(PER_LN2, ROUNDER);
        let n = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i64;
        let n_f = shifted - ROUNDER;
        let r = (-n_f).mul_add(LN2_128_LO, (-n_f).mul_add(LN2_128_HI, x));
        // n ≥ −130 758, so k ≥ −1022 and 2^k is a normal number. The masks keep a NaN's
        // garbage n inside the table and the exponent field; r carries the NaN through.
        let (j, k) = ((n & 127) as usize, n >> 7);
        let scale = f64::from_bits((k.wrapping_add(1023) as u64 & 0x7ff) << 52);
        let t = self.powers[j] * scale;
        let r2 = r * r;
        let low = r.mul_add(1.0 / 6.0, 0.5);
        let high = r.mul_add(1.0 / 120.0, 1.0 / 24.0);
        let e_r_minus_1 = r2.mul_add(r2.mul_add(high, low), r);
        t.mul_add(e_r_minus_1, t)
    }

    /// σ(z) = 1/(1 + e^−z), computed as [`crate::logistic::sigmoid`] is, from e^−|z|.
    #[inline(always)]
    pub(crate) fn sigmoid(&self, z: f64) -> f64 {
        let e = self.exp_nonpositive(-z.abs());
        let numerator = if z >= 0.0 { 1.0 } else { e };
        numerator / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ulps_apart(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    /// Within one unit in the last place of the library's `exp` everywhere it is used: a dense
    /// sweep of [−708, 0], and the points where the table's index turns over.
    #[test]
    fn exp_is_within_one_ulp_of_the_library_from_minus_708_to_0() {
        let table = ExpTable::get();
        let mut worst = (0, 0.0);
        let mut x = -708.0;
        while x <= 0.0 {
            let ulps = ulps_apart(table.exp_nonpositive(x), x.exp());
            if ulps > worst.0 {
                worst = (ulps, x);
            }
            x += 0.000_617;
        }
        for n in -130_000..=0 {
            let x = n as f64 * std::f64::consts::LN_2 / 128.0;
            for x in [x, x.next_up(), x.next_down()] {
                let ulps = ulps_apart(table.exp_nonpositive(x), x.exp());
                if (-708.0..=0.0).contains(&x) && ulps > worst.0 {
                    worst = (ulps, x);
                }
            }
        }
        assert!(worst.0 <= 1, "{} ulps at x = {}", worst.0, worst.1);
        assert_eq!(table.exp_nonpositive(0.0), 1.0);
        assert_eq!(table.exp_nonpositive(-0.0), 1.0);
    }

    #[test]
    fn exp_stops_at_the_smallest_normal_results_and_keeps_nan() {
        let table = ExpTable::get();
        let floor = table.exp_nonpositive(-708.0);
        assert!(floor.is_normal() && floor > 0.0);
        for x in [-708.5, -745.0, -1e6, f64::NEG_INFINITY] {
            assert_eq!(table.exp_nonpositive(x), floor, "x = {x}");
        }
        assert!(table.exp_nonpositive(f64::NAN).is_nan());
        assert!(table.sigmoid(f64::NAN).is_nan());
    }

    proptest! {
        /// σ from the table agrees with σ from the library's `exp` to a few units in the last
        /// place (each has one rounding of e^−|z|, a sum and a quotient), and is exactly 0.5,
        /// 1 and (for huge negative z) tiny where it must be.
        #[test]
        fn sigmoid_matches_the_library_sigmoid(z in -800.0f64..800.0) {
            let ours = ExpTable::get().sigmoid(z);
            let library = crate::logistic::sigmoid(z);
            if z >= -708.0 {
                prop_assert!(ulps_apart(ours, library) <= 3, "σ({z}): {ours} vs {library}");
            } else {
                prop_assert!(ours <= 3.4e-308 && library <= ours, "σ({z}): {ours} vs {library}");
            }
        }
    }

    #[test]
    fn sigmoid_at_its_landmarks() {
        let table = ExpTable::get();
        assert_eq!(table.sigmoid(0.0), 0.5);
        assert_eq!(table.sigmoid(40.0), 1.0);
        assert_eq!(table.sigmoid(1e6), 1.0);
        assert_eq!(table.sigmoid(-1e6), table.exp_nonpositive(-708.0) / (1.0 + table.exp_nonpositive(-708.0)));
    }
}
