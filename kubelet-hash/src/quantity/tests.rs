//! The exact-decimal arithmetic behind canonical forms.

use std::cmp::Ordering;

use super::Decimal;

#[test]
fn rounding_up_to_nano_moves_away_from_zero_and_carries() {
    let mut value = Decimal::from_digits(false, "1999999999999", -12);
    value.round_up_to_nano();
    assert_eq!(value, Decimal::from_digits(false, "2", 0));
    let mut tiny = Decimal::from_digits(true, "5", -30);
    tiny.round_up_to_nano();
    assert_eq!(tiny, Decimal::from_digits(true, "1", -9));
}

#[test]
fn magnitudes_compare_with_whole_numbers_including_fractions() {
    let value = Decimal::from_digits(false, "10245", -1);
    assert_eq!(value.cmp_magnitude(1024), Ordering::Greater);
    assert_eq!(value.cmp_magnitude(1025), Ordering::Less);
    assert_eq!(
        Decimal::from_digits(true, "1024", 0).cmp_magnitude(1024),
        Ordering::Equal
    );
    assert_eq!(
        Decimal::from_digits(false, "1", 30).cmp_magnitude(u64::MAX),
        Ordering::Greater
    );
}

#[test]
fn doubling_is_exact_for_large_powers() {
    let value = Decimal::from_digits(false, "3", 0).times_pow2(60);
    assert_eq!(value.magnitude_u64(), 3 << 60);
}
