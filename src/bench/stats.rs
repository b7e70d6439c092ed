//! Sample statistics of the benchmarks: a [`Stat`] (median, min, max over repeated runs)
//! and the ratio helper every family uses, so that figures are always medians and ratios
//! are always taken between medians measured in the same run.

use std::time::{Duration, Instant};

/// Summary of repeated measurements of one figure, in the unit its field name says.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub samples: usize,
}

impl Stat {
    /// Summarises `samples`; `None` when there are none (or one is not finite).
    pub fn from_samples(mut samples: Vec<f64>) -> Option<Stat> {
        if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Some(Stat {
            median,
            min: samples[0],
            max: samples[n - 1],
            samples: n,
        })
    }
}

/// `numerator / denominator`, or `None` when it would not be a meaningful finite number.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    let r = numerator / denominator;
    (denominator > 0.0 && r.is_finite()).then_some(r)
}

/// Runs `f` and returns its value with the elapsed wall time.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let value = f();
    (value, started.elapsed())
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let odd = Stat::from_samples(vec![5.0, 1.0, 3.0]).unwrap();
        assert_eq!(
            (odd.median, odd.min, odd.max, odd.samples),
            (3.0, 1.0, 5.0, 3)
        );
        let even = Stat::from_samples(vec![4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(even.median, 2.5);
    }

    #[test]
    fn empty_or_non_finite_samples_give_no_stat() {
        assert_eq!(Stat::from_samples(vec![]), None);
        assert_eq!(Stat::from_samples(vec![1.0, f64::NAN]), None);
    }

    #[test]
    fn ratio_refuses_zero_denominators() {
        assert_eq!(ratio(1.0, 2.0), Some(0.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(1.0, -1.0), None);
    }
}
