//! Numbers as a reader should see them: a column's decimals while they show enough of the
//! number, its significant digits otherwise. Four decimals printed an income coefficient of
//! 3.0e-6 as `0.0000`, and a compare of two such coefficients as a `-0.0000` difference.

/// The fewest significant digits a number below 1 keeps when printed plainly; with fewer, it
/// is printed in scientific form with this many.
const MIN_SIGNIFICANT: i32 = 3;

/// `v` with `decimals` decimals while they show at least three significant digits of a number
/// below 1 (`0.2013`, `0.006554`, and any number of 1 or more as it is); a smaller number in
/// scientific form with three (`3.00e-6` where four decimals said `0.0000`).
pub fn readable(v: f64, decimals: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v:.decimals$}");
    }
    // 0.2013 → −1: the place of the first significant digit.
    let magnitude = v.abs().log10().floor() as i32;
    let shown = i32::try_from(decimals).unwrap_or(i32::MAX).saturating_add(magnitude + 1);
    if magnitude < 0 && shown < MIN_SIGNIFICANT {
        format!("{v:.prec$e}", prec = (MIN_SIGNIFICANT - 1) as usize)
    } else {
        format!("{v:.decimals$}")
    }
}

/// [`readable`] with a sign always: a difference.
pub fn readable_signed(v: f64, decimals: usize) -> String {
    let text = readable(v, decimals);
    if text.starts_with('-') { text } else { format!("+{text}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_while_they_show_three_significant_digits_else_scientific() {
        assert_eq!(readable(3.0e-6, 4), "3.00e-6");
        assert_eq!(readable(-3.0e-6, 6), "-3.00e-6");
        assert_eq!(readable(0.2013, 4), "0.2013");
        assert_eq!(readable(0.006554, 6), "0.006554");
        assert_eq!(readable(0.001344, 4), "1.34e-3");
        assert_eq!(readable(-10.026814, 4), "-10.0268");
        assert_eq!(readable(687.350074, 6), "687.350074");
        assert_eq!(readable(1000.0, 0), "1000");
        assert_eq!(readable(5.0, 0), "5");
        assert_eq!(readable(0.0, 4), "0.0000");
        assert_eq!(readable(f64::INFINITY, 4), "inf");
        assert_eq!(readable_signed(6.0e-6, 4), "+6.00e-6");
        assert_eq!(readable_signed(-0.5, 4), "-0.5000");
    }
}
