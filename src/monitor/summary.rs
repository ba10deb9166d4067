//! `BATCH_SUMMARY`: one row per node, per DC, and the cluster, with the
//! pace over the last 100 s and the average.

use super::*;

impl Cx<'_> {
    pub(super) fn summary(&self, bid: Option<&Text>) -> Result<Output> {
        let span = bid.map(|t| t.span);
        let b = self.batch(bid)?;
        let nodes = self
            .store
            .batch_node_rows(&b.bid)
            .map_err(self.store_err(span))?;
        let interrupted =
            interrupted(self.store, &b.bid, b.status).map_err(self.store_err(span))?;
        // An interrupted batch's time stopped when its process last beat.
        let now_ms = if interrupted {
            let state = self
                .store
                .batch_state(&b.bid)
                .map_err(self.store_err(span))?;
            state
                .heartbeat_at
                .as_deref()
                .and_then(millis)
                .unwrap_or(self.now.timestamp_millis())
        } else {
            self.now.timestamp_millis()
        };
        let status = if interrupted {
            INTERRUPTED.to_string()
        } else {
            b.status.to_string()
        };
        let active = !b.is_final();
        // A row still open ends now, unless its batch has ended.
        let open_end = if active {
            Some(now_ms)
        } else {
            b.end_time.as_deref().and_then(millis).or(Some(now_ms))
        };
        // A node that never ended its run (it was killed; the batch was
        // then cancelled or retried elsewhere) ends with a finished batch.
        let node_end = |n: &NodeRow| {
            n.end_time
                .as_deref()
                .and_then(millis)
                .or(if active { None } else { open_end })
        };
        let mut t = Table::new(columns::BATCH_SUMMARY.iter().copied());
        let mut by_dc: BTreeMap<&str, Vec<(&NodeRow, Option<f64>)>> = BTreeMap::new();
        let mut cluster_pace: Option<f64> = None;
        for n in &nodes {
            let samples = self
                .store
                .pace_samples(&b.bid, &n.node, PACE_WINDOW_MS)
                .map_err(self.store_err(span))?;
            let pace = node_pace(samples, active, now_ms);
            cluster_pace = add_known(cluster_pace, pace);
            by_dc.entry(n.dc.as_str()).or_default().push((n, pace));
            let start = millis(&n.start_time);
            let end = node_end(n);
            let row = SummaryRow {
                level: "Node",
                name: Some(n.node.clone()),
                status: status.clone(),
                start,
                end,
                duration: span_ms(start, end.or(open_end)),
                remaining: None,
                remaining_duration: None,
                total: n.completed + n.failed,
                succeeded: n.completed,
                failed: n.failed,
                added: n.added,
                updated: n.updated,
                unchanged: n.unchanged,
                pct_completed: None,
                pace,
            };
            t.push_row(row.cells());
        }
        for (dc, members) in &by_dc {
            let sum = |f: fn(&NodeRow) -> i64| members.iter().map(|(n, _)| f(n)).sum::<i64>();
            let start = members
                .iter()
                .filter_map(|(n, _)| millis(&n.start_time))
                .min();
            let ends: Vec<Option<i64>> = members.iter().map(|(n, _)| node_end(n)).collect();
            let end = if ends.iter().all(Option::is_some) {
                ends.into_iter().flatten().max()
            } else {
                None
            };
            let succeeded = sum(|n| n.completed);
            let failed = sum(|n| n.failed);
            let row = SummaryRow {
                level: "DC",
                name: Some((*dc).to_string()),
                status: status.clone(),
                start,
                end,
                duration: span_ms(start, end.or(open_end)),
                remaining: None,
                remaining_duration: None,
                total: succeeded + failed,
                succeeded,
                failed,
                added: sum(|n| n.added),
                updated: sum(|n| n.updated),
                unchanged: sum(|n| n.unchanged),
                pct_completed: None,
                pace: members.iter().fold(None, |acc, (_, p)| add_known(acc, *p)),
            };
            t.push_row(row.cells());
        }
        let c = &b.counts;
        let start = b.start_time.as_deref().and_then(millis);
        let end = b.end_time.as_deref().and_then(millis);
        let total = shown_total(&b);
        let remaining = (total - c.completed - c.failed - c.cancelled).max(0);
        let remaining_duration = if remaining == 0 {
            Some(Duration::ZERO)
        } else if interrupted || b.status == crate::batch::BatchStatus::Paused {
            // Nothing runs it (interrupted), or nothing runs until
            // BATCH_RESUME (paused): no time can be told.
            None
        } else {
            cluster_pace
                .filter(|p| *p > 0.0)
                .map(|p| Duration::from_secs_f64(remaining as f64 / p))
        };
        let row = SummaryRow {
            level: "Cluster",
            name: None,
            status: status.clone(),
            start,
            end,
            duration: span_ms(start, end.or(Some(now_ms))),
            remaining: Some(remaining),
            remaining_duration,
            total,
            succeeded: c.completed,
            failed: c.failed,
            added: c.added,
            updated: c.updated,
            unchanged: c.unchanged,
            pct_completed: completion_pct(&b),
            pace: cluster_pace,
        };
        t.push_row(row.cells());
        Ok(t.into())
    }
}

/// One `BATCH_SUMMARY` row before it becomes cells.
pub(super) struct SummaryRow {
    pub(super) level: &'static str,
    pub(super) name: Option<String>,
    pub(super) status: String,
    pub(super) start: Option<i64>,
    pub(super) end: Option<i64>,
    pub(super) duration: Option<i64>,
    pub(super) remaining: Option<i64>,
    pub(super) remaining_duration: Option<Duration>,
    pub(super) total: i64,
    pub(super) succeeded: i64,
    pub(super) failed: i64,
    pub(super) added: i64,
    pub(super) updated: i64,
    pub(super) unchanged: i64,
    pub(super) pct_completed: Option<f64>,
    pub(super) pace: Option<f64>,
}

impl SummaryRow {
    /// In the order of [`columns::BATCH_SUMMARY`].
    pub(super) fn cells(self) -> Vec<Cell> {
        let finished = self.succeeded + self.failed;
        let avg = self
            .duration
            .filter(|d| *d > 0)
            .map(|d| finished as f64 * 1000.0 / d as f64);
        vec![
            Cell::Text(self.level.into()),
            self.name.into(),
            Cell::Text(self.status),
            self.start.and_then(utc_ms).into(),
            self.end.and_then(utc_ms).into(),
            self.duration.map(ms_duration).into(),
            self.remaining_duration.into(),
            self.remaining.into(),
            Cell::Int(self.total),
            Cell::Int(self.succeeded),
            Cell::Int(self.failed),
            Cell::Int(self.added),
            Cell::Int(self.updated),
            Cell::Int(self.unchanged),
            self.pct_completed.into(),
            self.pace.into(),
            avg.into(),
        ]
    }
}

/// Entities per second over the node's last 100 s of samples (see the
/// module doc); `None` when unknown.
pub(super) fn node_pace(samples: Option<PaceSamples>, active: bool, now_ms: i64) -> Option<f64> {
    let s = samples?;
    if active && s.newest.0 < now_ms - PACE_WINDOW_MS {
        return Some(0.0);
    }
    let dt = s.newest.0 - s.reference.0;
    (dt > 0).then(|| (s.newest.1 - s.reference.1) as f64 * 1000.0 / dt as f64)
}

/// The sum of the known values; `None` while none is known.
pub(super) fn add_known(acc: Option<f64>, x: Option<f64>) -> Option<f64> {
    match (acc, x) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}
