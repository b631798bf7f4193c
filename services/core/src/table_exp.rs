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
//! Each step is a [`multiply_add`]: fused (one instruction, one rounding) where the CPU has FMA,
//! a multiply and an add where it has not, since there `mul_add` is a slow library call. The
//! two differ only in rounding, both within one unit in the last place.

use std::sync::LazyLock;

/// Whether code compiled for this target alone (no features picked at run time) has FMA:
/// always on aarch64, on x86-64 only when built for a CPU that has it.
pub(crate) const FMA_IN_BASELINE: bool = cfg!(any(target_arch = "aarch64", target_feature = "fma"));

/// a·b + c: with one rounding when `FUSED` (for a CPU with FMA), else with two.
#[inline(always)]
pub(crate) fn multiply_add<const FUSED: bool>(a: f64, b: f64, c: f64) -> f64 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// 2^(j/128) for j in 0..128.
#[derive(Debug)]
pub(crate) struct ExpTable {
    powers: [f64; 128],
}

static TABLE: LazyLock<ExpTable> =
    // j/128 is exact, and glibc's exp2 gives the double nearest 2^(j/128) for every j (checked
    // against 50-digit values); another library's may be a unit off, which the tests would see.
    LazyLock::new(|| ExpTable { powers: std::array::from_fn(|j| (j as f64 / 128.0).exp2()) });

impl ExpTable {
    /// The table, made on first use.
    pub(crate) fn get() -> &'static ExpTable {
        &TABLE
    }

    /// e^x for x ≤ 0 (and NaN). Below −708, where e^x leaves the normal numbers, it gives
    /// e^−708 ≈ 3.3e−308: σ needs no more (1 + e^−708 is 1).
    #[inline(always)]
    pub(crate) fn exp_nonpositive<const FUSED: bool>(&self, x: f64) -> f64 {
        // 1.5·2⁵²: adding it rounds to the nearest integer, which its low bits then hold.
        const ROUNDER: f64 = 6_755_399_441_055_744.0;
        const PER_LN2: f64 = 184.664_965_233_787_3; // 128 / ln 2
        // ln 2 / 128 in two parts: the first has 21 significant bits, so n · HI is exact for
        // any n this sees (|n| < 2¹⁷), fused or not.
        const LN2_128_HI: f64 = 0.005_415_208_637_714_386;
        const LN2_128_LO: f64 = 3.710_410_186_743_494e-9;
        // The comparison leaves a NaN as it is.
        let x = if x < -708.0 { -708.0 } else { x };
        let shifted = multiply_add::<FUSED>(x, PER_LN2, ROUNDER);
        let n = shifted.to_bits().wrapping_sub(ROUNDER.to_bits()) as i64;
        let n_f = shifted - ROUNDER;
        let r = multiply_add::<FUSED>(-n_f, LN2_128_LO, multiply_add::<FUSED>(-n_f, LN2_128_HI, x));
        // n ≥ −130 758, so k ≥ −1022 and 2^k is a normal number. The masks keep a NaN's
        // garbage n inside the table and the exponent field; r carries the NaN through.
        let (j, k) = ((n & 127) as usize, n >> 7);
        let scale = f64::from_bits((k.wrapping_add(1023) as u64 & 0x7ff) << 52);
        let t = self.powers[j] * scale;
        let r2 = r * r;
        let low = multiply_add::<FUSED>(r, 1.0 / 6.0, 0.5);
        let high = multiply_add::<FUSED>(r, 1.0 / 120.0, 1.0 / 24.0);
        let e_r_minus_1 = multiply_add::<FUSED>(r2, multiply_add::<FUSED>(r2, high, low), r);
        multiply_add::<FUSED>(t, e_r_minus_1, t)
    }

    /// σ(z) = 1/(1 + e^−z), computed as [`crate::logistic::sigmoid`] is, from e^−|z|.
    #[inline(always)]
    pub(crate) fn sigmoid<const FUSED: bool>(&self, z: f64) -> f64 {
        let e = self.exp_nonpositive::<FUSED>(-z.abs());
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

    /// Within one unit in the last place of the library's `exp` everywhere it is used, fused
    /// or not: a dense sweep of [−708, 0], and the points where the table's index turns over.
    #[test]
    fn exp_is_within_one_ulp_of_the_library_from_minus_708_to_0() {
        fn worst<const FUSED: bool>() -> (u64, f64) {
            let table = ExpTable::get();
            let mut worst = (0, 0.0);
            let mut x = -708.0;
            while x <= 0.0 {
                let ulps = ulps_apart(table.exp_nonpositive::<FUSED>(x), x.exp());
                if ulps > worst.0 {
                    worst = (ulps, x);
                }
                x += 0.000_617;
            }
            for n in -130_000..=0 {
                let x = n as f64 * std::f64::consts::LN_2 / 128.0;
                for x in [x, x.next_up(), x.next_down()] {
                    let ulps = ulps_apart(table.exp_nonpositive::<FUSED>(x), x.exp());
                    if (-708.0..=0.0).contains(&x) && ulps > worst.0 {
                        worst = (ulps, x);
                    }
                }
            }
            assert_eq!(table.exp_nonpositive::<FUSED>(0.0), 1.0);
            assert_eq!(table.exp_nonpositive::<FUSED>(-0.0), 1.0);
            worst
        }
        let (fused, unfused) = (worst::<true>(), worst::<false>());
        assert!(fused.0 <= 1, "fused: {} ulps at x = {}", fused.0, fused.1);
        assert!(unfused.0 <= 1, "unfused: {} ulps at x = {}", unfused.0, unfused.1);
    }

    #[test]
    fn exp_stops_at_the_smallest_normal_results_and_keeps_nan() {
        let table = ExpTable::get();
        let floor = table.exp_nonpositive::<true>(-708.0);
        assert!(floor.is_normal() && floor > 0.0);
        for x in [-708.5, -745.0, -1e6, f64::NEG_INFINITY] {
            assert_eq!(table.exp_nonpositive::<true>(x), floor, "x = {x}");
            assert_eq!(
                table.exp_nonpositive::<false>(x),
                table.exp_nonpositive::<false>(-708.0),
                "x = {x}"
            );
        }
        assert!(table.exp_nonpositive::<true>(f64::NAN).is_nan());
        assert!(table.exp_nonpositive::<false>(f64::NAN).is_nan());
        assert!(table.sigmoid::<true>(f64::NAN).is_nan());
    }

    proptest! {
        /// σ from the table agrees with σ from the library's `exp` to a few units in the last
        /// place (each has one rounding of e^−|z|, a sum and a quotient), and is exactly 0.5,
        /// 1 and (for huge negative z) tiny where it must be.
        #[test]
        fn sigmoid_matches_the_library_sigmoid(z in -800.0f64..800.0) {
            let library = crate::logistic::sigmoid(z);
            for ours in [ExpTable::get().sigmoid::<true>(z), ExpTable::get().sigmoid::<false>(z)] {
                if z >= -708.0 {
                    prop_assert!(ulps_apart(ours, library) <= 3, "σ({z}): {ours} vs {library}");
                } else {
                    prop_assert!(ours <= 3.4e-308 && library <= ours, "σ({z}): {ours} vs {library}");
                }
            }
        }
    }

    #[test]
    fn sigmoid_at_its_landmarks() {
        let table = ExpTable::get();
        assert_eq!(table.sigmoid::<true>(0.0), 0.5);
        assert_eq!(table.sigmoid::<false>(0.0), 0.5);
        assert_eq!(table.sigmoid::<true>(40.0), 1.0);
        assert_eq!(table.sigmoid::<true>(1e6), 1.0);
        let floor = table.exp_nonpositive::<true>(-708.0);
        assert_eq!(table.sigmoid::<true>(-1e6), floor / (1.0 + floor));
    }
}
