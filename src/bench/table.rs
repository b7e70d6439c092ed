//! Renders a [`BenchReport`] as plain-text tables for a terminal: one table per family,
//! medians with their sample counts, and every ratio next to the figures it divides.

use std::fmt::Write;

use super::stats::Stat;
use super::BenchReport;

fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_string(), |r| format!("{r:.2}"))
}

fn us(s: &Stat) -> String {
    if s.median >= 10_000.0 {
        format!("{:.1} ms", s.median / 1000.0)
    } else {
        format!("{:.0} µs", s.median)
    }
}

fn load(l: Option<[f64; 3]>) -> String {
    l.map_or_else(|| "?".to_string(), |l| format!("{:.2}", l[0]))
}

/// A titled table of right-aligned columns.
fn simple_table(
    out: &mut String,
    title: &str,
    head: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        cells
            .map(|c| format!("{c:>12}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    let _ = writeln!(out, "\n{title}");
    let _ = writeln!(out, "{}", line(&mut head.iter().copied()));
    for row in rows {
        let _ = writeln!(out, "{}", line(&mut row.iter().map(String::as_str)));
    }
}

/// The whole report as text.
pub fn render(r: &BenchReport) -> String {
    let mut out = String::new();
    let env = &r.environment;
    let _ = writeln!(
        out,
        "statedb-harness bench ({} mode, {} build, {} cores, load {} -> {}, {:.0} s)",
        r.mode,
        if env.optimized {
            "release"
        } else {
            "DEBUG (figures not meaningful)"
        },
        env.cores,
        load(env.load_average_start),
        load(env.load_average_end),
        r.total_secs
    );
    let homes: Vec<String> = r
        .homes
        .iter()
        .map(|h| format!("{} ({:.1} s)", h.size, h.generate_secs))
        .collect();
    let _ = writeln!(out, "homes generated: {}", homes.join(", "));

    if !r.backfill.is_empty() {
        let _ = writeln!(
            out,
            "\nBackfill (median of {}; reference = try_init on a fresh DB; same work = every column, whole files, parsed on every core, one txn per batch; head only = 7 columns from the head, one txn)",
            r.repeats
        );
        let _ = writeln!(
            out,
            "  {:>8}  {:>12}  {:>8}  {:>12}  {:>8}  {:>9}  {:>12}  {:>9}",
            "rollouts",
            "reference /s",
            "ref s",
            "same work /s",
            "same s",
            "ref/same",
            "head only /s",
            "ref/head"
        );
        for b in &r.backfill {
            let _ = writeln!(
                out,
                "  {:>8}  {:>12.0}  {:>8.3}  {:>12.0}  {:>8.3}  {:>9}  {:>12.0}  {:>9}",
                b.size,
                b.reference_rollouts_per_sec,
                b.reference_secs.median,
                b.same_work_baseline_rollouts_per_sec,
                b.same_work_baseline_secs.median,
                ratio(b.same_work_ratio),
                b.head_only_baseline_rollouts_per_sec,
                ratio(b.head_only_ratio)
            );
        }
    }

    if !r.init_process.is_empty() {
        let rows = r.init_process.iter().map(|p| {
            vec![
                p.size.to_string(),
                format!("{:.3}", p.backfill_secs),
                format!("{:.1}", p.rss_peak_mb),
                format!("{:.1}", p.db_size_mb),
            ]
        });
        simple_table(
            &mut out,
            "One `init` process on a fresh DB (spawn to exit; peak RSS = its VmHWM as it exits)",
            &["rollouts", "secs", "peak RSS MB", "DB MB"],
            rows,
        );
    }

    if !r.startup_gate.is_empty() {
        let _ = writeln!(
            out,
            "\nStartup gate on a complete DB (median of {}; try_init vs Connection::open + one query)",
            r.gate_samples
        );
        let _ = writeln!(
            out,
            "  {:>8}  {:>12}  {:>12}  {:>9}  {:>12}  {:>12}",
            "rollouts", "try_init", "open+query", "ratio", "quick_check", "reconcile"
        );
        for g in &r.startup_gate {
            let _ = writeln!(
                out,
                "  {:>8}  {:>12}  {:>12}  {:>9}  {:>12}  {:>12}",
                g.size,
                us(&g.try_init_us),
                us(&g.open_query_us),
                ratio(g.ratio),
                us(&g.quick_check_us),
                us(&g.reconcile_us)
            );
        }
    }

    if !r.pages.is_empty() {
        let rows = r.pages.iter().map(|p| {
            vec![
                p.size.to_string(),
                p.page_size.to_string(),
                format!("{:.2} ms", p.first_page_ms.median),
                format!("{:.2} ms", p.first_page_new_handle_ms.median),
                p.rollout_dirs.to_string(),
                format!("{:.2} us", p.first_page_new_handle_us_per_dir),
                format!("{:.2} ms", p.arming_page_ms.median),
                format!("{:.2} ms", p.last_page_ms.median),
            ]
        });
        simple_table(
            &mut out,
            "Listing (median; first page with its reconcile: on a long-lived handle, as a new handle's first listing, which stats every directory, and as its second, which also arms the directory watch; last page = the oldest through a cursor)",
            &["rollouts", "page", "first page", "new handle", "dirs", "per dir", "arming", "last page"],
            rows,
        );
    }

    if !r.lookup.is_empty() {
        let walk_samples = r.lookup[0].full_walk_us.samples;
        let _ = writeln!(
            out,
            "\nLookup latency (median; DB hit and day probe of {} samples, walk and not-found of {})",
            r.lookup[0].db_hit_us.samples, walk_samples
        );
        let _ = writeln!(
            out,
            "  {:>13}  {:>10}  {:>10}  {:>7}  {:>10}  {:>10}  {:>10}",
            "rollouts", "DB hit", "raw hit", "ratio", "day probe", "full walk", "not found"
        );
        for l in &r.lookup {
            let _ = writeln!(
                out,
                "  {:>13}  {:>10}  {:>10}  {:>7}  {:>10}  {:>10}  {:>10}",
                l.size,
                us(&l.db_hit_us),
                us(&l.db_hit_raw_us),
                ratio(l.db_hit_ratio),
                us(&l.day_probe_us),
                us(&l.full_walk_us),
                us(&l.not_found_us)
            );
        }
        if let Some(g) = &r.lookup_growth {
            let label = format!("x {}/{}", g.to_size, g.from_size);
            let _ = writeln!(
                out,
                "  {:>13}  {:>10}  {:>10}  {:>7}  {:>10}  {:>10}  {:>10}",
                label,
                ratio(g.db_hit),
                "",
                "",
                ratio(g.day_probe),
                ratio(g.full_walk),
                ratio(g.not_found)
            );
        }
    }

    match (&r.contention, &r.contention_skipped) {
        (Some(c), _) => {
            let _ = writeln!(
                out,
                "\nContention: N concurrent `init` processes, fresh DB over {} rollouts (median of {}; waiters wake on a commit, poll fallback {} ms)",
                c.size, r.repeats, c.poll_interval_ms
            );
            let _ = writeln!(
                out,
                "  {:>5}  {:>12}  {:>9}  {:>12}  {:>16}  {:>9}",
                "procs", "all ready", "vs fewest", "wake lag", "exactly one ran", "all ready"
            );
            for run in &c.runs {
                let lag = run
                    .wake_lag_ms
                    .as_ref()
                    .map_or("-".to_string(), |l| format!("{:.0} ms", l.median));
                let _ = writeln!(
                    out,
                    "  {:>5}  {:>9.0} ms  {:>9}  {:>12}  {:>16}  {:>9}",
                    run.procs,
                    run.all_ready_ms.median,
                    ratio(run.ratio_to_fewest),
                    lag,
                    if run.exactly_one_ran { "yes" } else { "NO" },
                    if run.all_ready { "yes" } else { "NO" }
                );
            }
        }
        (None, Some(why)) => {
            let _ = writeln!(out, "\nContention: not measured ({why})");
        }
        (None, None) => {
            let _ = writeln!(out, "\nContention: not measured");
        }
    }

    codex_peers(&mut out, &r.peers.codex);

    let h = &r.harness_overhead;
    match h.ratio {
        Some(x) => {
            let _ = writeln!(
                out,
                "\nHarness overhead: {x:.2} (catalog {:.0} ms / declared waits {:.0} ms)",
                h.catalog_wall_ms.unwrap_or(0.0),
                h.declared_waits_ms.unwrap_or(0.0)
            );
        }
        None => {
            let _ = writeln!(out, "\nHarness overhead: {}", h.note);
        }
    }

    let _ = writeln!(out, "\nGoals:");
    for g in &r.goals {
        let mark = match g.met {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "n/a",
        };
        let _ = writeln!(out, "  [{mark}] {} ({})", g.name, g.detail);
    }
    for f in &r.check_failures {
        let _ = writeln!(out, "CHECK FAILED: {f}");
    }
    for e in &r.errors {
        let _ = writeln!(out, "ERROR: {e}");
    }
    out
}

fn codex_peers(out: &mut String, c: &super::codex_peer::CodexPeerReport) {
    if let Some(why) = &c.skipped {
        let _ = writeln!(out, "\nCodex side by side: skipped ({why})");
        return;
    }
    let version = c.codex_version.as_deref().unwrap_or("?");
    for f in &c.sizes {
        let _ = writeln!(
            out,
            "\nCodex {version} side by side on {} rollouts (medians; ratio = Codex / reference)",
            f.size
        );
        let _ = writeln!(
            out,
            "  {:<44}  {:>12}  {:>12}  {:>8}",
            "", "Codex", "reference", "ratio"
        );
        for (name, p) in [
            ("first start (spawn to backfill complete)", &f.first_start),
            ("warm read (app-server vs in-process)", &f.warm_read),
            ("one process: start + read", &f.one_process_read),
        ] {
            let _ = writeln!(
                out,
                "  {:<44}  {:>9.1} {:<2}  {:>9.1} {:<2}  {:>8}",
                name,
                p.codex.median,
                p.unit,
                p.reference.median,
                p.unit,
                ratio(p.ratio)
            );
        }
        for a in &f.all_ready {
            let codex = a
                .codex_ms
                .map_or("failed".to_string(), |ms| format!("{ms:.0} ms"));
            let _ = writeln!(
                out,
                "  {:<44}  {:>12}  {:>9.0} ms  {:>8}",
                format!("all ready, {} concurrent starts", a.procs),
                codex,
                a.reference_ms,
                ratio(a.ratio)
            );
            if let Some(why) = &a.codex_failed {
                let _ = writeln!(out, "    Codex: {why}");
            }
        }
    }
    for e in &c.errors {
        let _ = writeln!(out, "  error: {e}");
    }
}
