//! The fixed latency histogram of [`super::OutcomeCount`]: log-scale buckets over
//! microseconds, four per power of two (each at most 25% wide), the same in every SDK and
//! the server, so histograms add bucket by bucket and p50/p99 can be read back from any
//! sum of them.
//!
//! A duration of `us` microseconds (0 counted as 1) falls in octave `o = ⌊log₂ us⌋` and
//! quarter `s` (the two bits below the leading one), bucket `4·o + s`, which covers
//! `[2^o·(1 + s/4), 2^o·(1 + (s+1)/4))` µs. Below 4 µs some buckets stay empty. Everything
//! from about 17.9 minutes up lands in the last bucket.

/// Number of buckets; indexes are `0..BUCKETS`.
pub const BUCKETS: u32 = 120;

/// The bucket of a duration in microseconds.
pub fn bucket_of(us: u64) -> u32 {
    let v = us.max(1);
    let octave = 63 - v.leading_zeros();
    let quarter = if octave >= 2 {
        (v >> (octave - 2)) & 3
    } else {
        (v << (2 - octave)) & 3
    };
    // octave ≤ 63 and quarter ≤ 3: the index fits in u32 before the clamp.
    (octave * 4 + quarter as u32).min(BUCKETS - 1)
}

/// The range `[low, high)` a bucket covers, in microseconds.
pub fn bounds(bucket: u32) -> (f64, f64) {
    let octave = bucket / 4;
    let quarter = f64::from(bucket % 4);
    let base = 2f64.powi(i32::try_from(octave).unwrap_or(i32::MAX));
    (
        base * (1.0 + quarter / 4.0),
        base * (1.0 + (quarter + 1.0) / 4.0),
    )
}

/// The `q` quantile (0 < q ≤ 1) of a histogram given as (bucket, count) pairs in any order,
/// in microseconds, interpolated linearly inside the bucket that holds it; `None` when the
/// histogram is empty.
pub fn quantile(histogram: &[(u32, u64)], q: f64) -> Option<f64> {
    let mut sorted: Vec<(u32, u64)> = histogram.iter().copied().filter(|(_, n)| *n > 0).collect();
    sorted.sort_unstable();
    let total: u64 = sorted.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    // The rank of the quantile among `total` sorted durations (1-based, fractional).
    #[allow(clippy::cast_precision_loss)]
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(f64::MIN_POSITIVE);
    let mut below = 0u64;
    for (bucket, n) in &sorted {
        #[allow(clippy::cast_precision_loss)]
        if (below + n) as f64 >= rank {
            let (low, high) = bounds(*bucket);
            #[allow(clippy::cast_precision_loss)]
            let within = (rank - below as f64) / *n as f64;
            return Some(low + (high - low) * within.clamp(0.0, 1.0));
        }
        below += n;
    }
    sorted.last().map(|(b, _)| bounds(*b).1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_duration_falls_inside_its_bucket() {
        for us in (1..5_000u64).chain([65_536, 1_000_000, 60_000_000, 1 << 40]) {
            let b = bucket_of(us);
            let (low, high) = bounds(b);
            #[allow(clippy::cast_precision_loss)]
            let v = us as f64;
            if b < BUCKETS - 1 {
                assert!(
                    low <= v && v < high,
                    "{us} µs in bucket {b} = [{low}, {high})"
                );
                assert!(high / low <= 1.25 + 1e-9 || low < 4.0);
            }
        }
        assert_eq!(bucket_of(0), bucket_of(1));
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_read_back_within_a_bucket() {
        // 1,000 durations of 1..=1000 ms.
        let mut h = std::collections::BTreeMap::<u32, u64>::new();
        for ms in 1..=1000u64 {
            *h.entry(bucket_of(ms * 1000)).or_default() += 1;
        }
        let h: Vec<(u32, u64)> = h.into_iter().collect();
        let p50 = quantile(&h, 0.5).unwrap();
        let p99 = quantile(&h, 0.99).unwrap();
        assert!((p50 / 500_000.0 - 1.0).abs() < 0.125, "{p50}");
        assert!((p99 / 990_000.0 - 1.0).abs() < 0.125, "{p99}");
        assert_eq!(quantile(&[], 0.5), None);
    }
}
