//! What the soak records every interval (one CSV row) and how it judges the
//! whole series: window means and whether growth has stopped.

/// One interval of the soak, as written to `soak.csv`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Row {
    /// Seconds since traffic started (end of the interval).
    pub t: f64,
    /// Server resident memory, MiB.
    pub rss_mib: f64,
    /// Of which anonymous (heap, stacks; not mapped files), MiB.
    pub rss_anon_mib: f64,
    /// Server open descriptors.
    pub fds: u64,
    /// Server CPU over the interval, percent of one core.
    pub cpu_pct: f64,
    /// 1:1 end-to-end latency (pushes received in the interval), ms.
    pub p50_ms: f64,
    /// Its 99th percentile, ms.
    pub p99_ms: f64,
    /// Its largest, ms.
    pub max_ms: f64,
    /// 1:1 deliveries timed in the interval.
    pub timed: u64,
    /// Messages acknowledged in the interval (every kind of traffic).
    pub acked: u64,
    /// Deliveries (pushed or synced, first time) in the interval.
    pub delivered: u64,
    /// Reconnections in the interval (storms, slow consumers, resets).
    pub reconnects: u64,
    /// Client connections the server reports open (its gauge), if read.
    pub server_connections: Option<u64>,
}

impl Row {
    /// The CSV header line.
    pub const HEADER: &'static str = "t_secs,rss_mib,rss_anon_mib,fds,cpu_pct,e2e_p50_ms,e2e_p99_ms,e2e_max_ms,timed,acked,delivered,reconnects,server_connections";

    /// The row as one CSV line (no newline).
    pub fn csv(&self) -> String {
        format!(
            "{:.1},{:.2},{:.2},{},{:.1},{:.3},{:.3},{:.3},{},{},{},{},{}",
            self.t,
            self.rss_mib,
            self.rss_anon_mib,
            self.fds,
            self.cpu_pct,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.timed,
            self.acked,
            self.delivered,
            self.reconnects,
            self.server_connections
                .map(|c| c.to_string())
                .unwrap_or_default()
        )
    }
}

/// The mean of the values whose time lies in `[from, to]`; None if none does.
pub fn mean_between(points: &[(f64, f64)], from: f64, to: f64) -> Option<f64> {
    let inside: Vec<f64> = points
        .iter()
        .filter(|(t, _)| *t >= from && *t <= to)
        .map(|p| p.1)
        .collect();
    (!inside.is_empty()).then(|| inside.iter().sum::<f64>() / inside.len() as f64)
}

/// Growth over the last third of a series: the least-squares slope of its
/// last third times that third's length in time. A line that rose early
/// (warm-up, caches filling) and then levelled off scores near zero; one
/// that keeps climbing scores what it climbed. None with fewer than three
/// points in the last third.
pub fn last_third_growth(points: &[(f64, f64)]) -> Option<f64> {
    let tail = &points[points.len() - points.len() / 3..];
    if tail.len() < 3 {
        return None;
    }
    let n = tail.len() as f64;
    let mean_t = tail.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_v = tail.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for (t, v) in tail {
        cov += (t - mean_t) * (v - mean_v);
        var += (t - mean_t) * (t - mean_t);
    }
    if var == 0.0 {
        return Some(0.0);
    }
    let span = tail[tail.len() - 1].0 - tail[0].0;
    Some(cov / var * span)
}

/// How much a series may still grow over its last third and count as flat:
/// a fraction of its level there, or an absolute amount, whichever is
/// larger (the absolute floor keeps noise on a small level from failing
/// the verdict).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Fraction of the last third's mean.
    pub relative: f64,
    /// Absolute amount, in the series' unit.
    pub absolute: f64,
}

/// Server RSS may grow by at most 5% or 4 MiB over the last third.
pub const RSS_THRESHOLD: Threshold = Threshold {
    relative: 0.05,
    absolute: 4.0,
};

/// Server descriptors may grow by at most 5% or 16 over the last third.
pub const FD_THRESHOLD: Threshold = Threshold {
    relative: 0.05,
    absolute: 16.0,
};

impl Threshold {
    /// The growth allowed for a series whose last third averages `level`.
    pub fn allowed(&self, level: f64) -> f64 {
        (self.relative * level.abs()).max(self.absolute)
    }
}

/// A series' figures for the summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Mean over the first window.
    pub first_mean: f64,
    /// Mean over the last window.
    pub last_mean: f64,
    /// The largest value.
    pub max: f64,
    /// Growth over the last third ([`last_third_growth`]).
    pub last_third_growth: f64,
    /// What that growth may be and still count as flat.
    pub allowed_growth: f64,
    /// Whether the growth stayed within it.
    pub flat: bool,
}

impl Trend {
    /// The trend of `points` with first/last windows of `window` seconds;
    /// None when there are too few points to judge.
    pub fn of(points: &[(f64, f64)], window: f64, threshold: Threshold) -> Option<Trend> {
        let (start, end) = (points.first()?.0, points.last()?.0);
        let growth = last_third_growth(points)?;
        let tail = &points[points.len() - points.len() / 3..];
        let level = tail.iter().map(|p| p.1).sum::<f64>() / tail.len() as f64;
        let allowed = threshold.allowed(level);
        Some(Trend {
            first_mean: mean_between(points, start, start + window)?,
            last_mean: mean_between(points, end - window, end)?,
            max: points.iter().map(|p| p.1).fold(f64::MIN, f64::max),
            last_third_growth: growth,
            allowed_growth: allowed,
            flat: growth <= allowed,
        })
    }
}

/// The first/last window of a run of `secs`: ten minutes, or a third of a
/// shorter run.
pub fn window_for(secs: f64) -> f64 {
    (secs / 3.0).min(600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=360)
            .map(|i| i as f64 * 10.0)
            .map(|t| (t, f(t)))
            .collect()
    }

    #[test]
    fn a_level_series_has_no_growth() {
        let g = last_third_growth(&series(|_| 50.0)).unwrap();
        assert!(g.abs() < 1e-9, "{g}");
    }

    #[test]
    fn a_steady_climb_scores_what_it_climbed_over_the_last_third() {
        // 1 MiB a minute: 20 MiB over the last 1,200 s.
        let g = last_third_growth(&series(|t| 40.0 + t / 60.0)).unwrap();
        assert!((g - 20.0).abs() < 0.2, "{g}");
    }

    #[test]
    fn growth_that_stopped_before_the_last_third_counts_as_flat() {
        // Warm-up: climbs 30 MiB in ten minutes, then level.
        let warm = series(|t| 40.0 + 30.0 * (t / 600.0).min(1.0));
        let trend = Trend::of(&warm, 600.0, RSS_THRESHOLD).unwrap();
        assert!(trend.flat, "{trend:?}");
        assert!((trend.first_mean - 55.0).abs() < 1.0, "{trend:?}");
        assert_eq!(trend.last_mean, 70.0);
        assert_eq!(trend.max, 70.0);
    }

    #[test]
    fn growth_that_does_not_stop_is_not_flat() {
        let leak = series(|t| 40.0 + t / 60.0);
        let trend = Trend::of(&leak, 600.0, RSS_THRESHOLD).unwrap();
        assert!(!trend.flat, "{trend:?}");
    }

    #[test]
    fn the_allowed_growth_is_a_fraction_of_the_level_or_the_floor() {
        assert_eq!(RSS_THRESHOLD.allowed(400.0), 20.0, "5% of 400 MiB");
        assert_eq!(RSS_THRESHOLD.allowed(20.0), 4.0, "the 4 MiB floor");
        assert_eq!(FD_THRESHOLD.allowed(100.0), 16.0);
    }

    #[test]
    fn noise_within_the_floor_is_flat() {
        let noisy = series(|t| {
            800.0
                + if (t as u64 / 10).is_multiple_of(2) {
                    10.0
                } else {
                    -10.0
                }
        });
        assert!(Trend::of(&noisy, 600.0, FD_THRESHOLD).unwrap().flat);
    }

    #[test]
    fn too_few_samples_give_no_verdict() {
        assert_eq!(
            Trend::of(&[(0.0, 1.0), (10.0, 2.0)], 600.0, RSS_THRESHOLD),
            None
        );
        assert_eq!(Trend::of(&[], 600.0, RSS_THRESHOLD), None);
    }

    #[test]
    fn windows_are_ten_minutes_or_a_third_of_a_short_run() {
        assert_eq!(window_for(3600.0), 600.0);
        assert_eq!(window_for(300.0), 100.0);
    }

    #[test]
    fn a_row_has_as_many_csv_fields_as_the_header() {
        let row = Row {
            t: 10.0,
            server_connections: Some(812),
            ..Row::default()
        };
        assert_eq!(row.csv().split(',').count(), Row::HEADER.split(',').count());
        assert!(row.csv().ends_with(",812"));
        assert!(Row::default().csv().ends_with(','), "unknown gauge: empty");
    }
}
