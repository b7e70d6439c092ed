//! The kill matrix as a terminal table: per variant its kills, then every verdict that is
//! not a kill, then the reference's failures and one closing line.

use super::verdict::Verdict;
use super::KillMatrix;

pub fn render(m: &KillMatrix) -> String {
    let mut s = String::new();
    let width = m.variants.iter().map(|v| v.name.len()).max().unwrap_or(10);
    s.push_str(&format!(
        "{:<width$}  {:>5}  {:>8}  killed by\n",
        "variant", "kills", "time"
    ));
    for v in &m.variants {
        let killers: Vec<&str> = v
            .verdicts
            .iter()
            .filter(|s| s.verdict.is_kill())
            .map(|s| s.scenario.as_str())
            .collect();
        let by = if killers.is_empty() {
            "SURVIVED — add a scenario that catches it".to_string()
        } else {
            killers.join(", ")
        };
        s.push_str(&format!(
            "{:<width$}  {:>5}  {:>6.1} s  {by}\n",
            v.name,
            v.kills,
            v.wall_ms as f64 / 1000.0
        ));
        let noted = v
            .verdicts
            .iter()
            .filter(|p| matches!(p.verdict, Verdict::Noise { .. }));
        for p in v.problems().chain(noted) {
            let line = p.verdict.failure().unwrap_or("passed");
            s.push_str(&format!(
                "{:<width$}    {}: {} — {line}\n",
                "",
                p.verdict.label().to_uppercase(),
                p.scenario
            ));
        }
    }
    s.push('\n');
    if m.reference_failures.is_empty() {
        s.push_str("reference: passes every scenario\n");
    } else {
        for f in &m.reference_failures {
            s.push_str(&format!("reference FAILED {}: {}\n", f.scenario, f.failure));
        }
    }
    s.push_str(&format!(
        "{} variants, {} killed, {} survived, {} problems, {} reference failures; wall time {} ms\n",
        m.variants.len(),
        m.killed(),
        m.survivors.len(),
        m.problems(),
        m.reference_failures.len(),
        m.wall_ms
    ));
    s
}
