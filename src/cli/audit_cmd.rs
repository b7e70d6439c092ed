//! `audit`: read-only findings between a home's state DB and its rollout files; `--repair`
//! backs the DB up, fixes what Codex accepts and audits again. Exit 0 clean, 1 findings,
//! 2 error.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::args::HomeArgs;
use super::usage_error;
use crate::audit::{audit, repair::repair, AuditReport};

/// Codex's backfill lease (15 minutes): a `running` row older than this is expired.
const CODEX_LEASE_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub homes: HomeArgs,
    /// Back the DB (and its -wal/-shm) up to a timestamped directory, fix what Codex
    /// accepts, and audit again.
    #[arg(long)]
    pub repair: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

fn print_report(report: &AuditReport) {
    println!(
        "{}: {} rows, {} rollouts, backfill {}",
        report.db.display(),
        report.rows,
        report.rollouts,
        report.backfill_status
    );
    for finding in &report.findings {
        println!("  {}", finding.describe());
    }
    println!("{} finding(s)", report.findings.len());
}

fn exit_for(report: &AuditReport) -> ExitCode {
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

pub fn run(args: AuditArgs) -> ExitCode {
    let codex_home = match args.homes.checked_codex_home() {
        Ok(home) => home,
        Err(e) => return usage_error(e),
    };
    let db = args.homes.runtime_options().db_path();
    let now_ms = crate::clock::real_now_ms();
    if !args.repair {
        return match audit(&codex_home, &db, CODEX_LEASE_MS, now_ms) {
            Ok(report) => {
                if args.json {
                    println!("{}", json!(report));
                } else {
                    print_report(&report);
                }
                exit_for(&report)
            }
            Err(e) => usage_error(e),
        };
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    match repair(&codex_home, &db, CODEX_LEASE_MS, now_ms, &stamp) {
        Ok(done) => {
            if args.json {
                println!("{}", json!(done));
            } else {
                println!("backup: {}", done.backup.display());
                for fix in &done.fixed {
                    println!("fixed: {fix}");
                }
                print_report(&done.after);
            }
            exit_for(&done.after)
        }
        Err(e) => usage_error(e),
    }
}
