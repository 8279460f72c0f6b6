//! Detection and false-positive rates on the corpora in `tests/data/`, and a
//! timing loop (ignored by default; run it with `--ignored --nocapture`).

use std::time::Instant;

use super::*;
use ce_screen::{screen, Screening, Signal};

const INJECTIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/injection_corpus.txt");
const BENIGN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/benign_activity.txt");
const INJECTIONS_HOLDOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/injection_holdout.txt");
const BENIGN_HOLDOUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/benign_holdout.txt");
const INJECTIONS_BLIND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/injection_blind.txt");
const BENIGN_BLIND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/benign_blind.txt");

/// Non-comment, non-blank lines with the corpus escapes decoded (see the
/// header of `injection_corpus.txt`).
fn load(path: &str) -> Vec<String> {
    let raw = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    raw.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).map(unescape).collect()
}

fn unescape(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let esc = &rest[i + 1..];
        if let Some(r) = esc.strip_prefix('n') {
            out.push('\n');
            rest = r;
        } else if let Some(r) = esc.strip_prefix('t') {
            out.push('\t');
            rest = r;
        } else if let Some(r) = esc.strip_prefix('\\') {
            out.push('\\');
            rest = r;
        } else if let Some(r) = esc.strip_prefix("u{") {
            let end = r.find('}').unwrap_or_else(|| panic!("bad escape in {line}"));
            let code = u32::from_str_radix(&r[..end], 16).unwrap_or_else(|e| panic!("{line}: {e}"));
            out.push(char::from_u32(code).unwrap_or_else(|| panic!("bad code point in {line}")));
            rest = &r[end + 1..];
        } else if let Some(r) = esc.strip_prefix("tag{") {
            let end = r.find('}').unwrap_or_else(|| panic!("bad escape in {line}"));
            out.extend(r[..end].chars().filter_map(|c| char::from_u32(0xE0000 + c as u32)));
            rest = &r[end + 1..];
        } else {
            out.push('\\');
            rest = esc;
        }
    }
    out.push_str(rest);
    out
}

struct Rates {
    caught: usize,
    injections: usize,
    false_positives: usize,
    benign: usize,
}

fn measure(injections: &[String], benign: &[String], wrap: impl Fn(&str) -> String, label: &str) -> Rates {
    let missed: Vec<&String> = injections.iter().filter(|t| !screen(&wrap(t)).flagged()).collect();
    let flagged: Vec<(&String, Screening)> =
        benign.iter().map(|t| (t, screen(&wrap(t)))).filter(|(_, s)| s.flagged()).collect();
    let rates = Rates {
        caught: injections.len() - missed.len(),
        injections: injections.len(),
        false_positives: flagged.len(),
        benign: benign.len(),
    };
    eprintln!(
        "{label}: caught {}/{} ({:.1}%), false positives {}/{} ({:.1}%)",
        rates.caught,
        rates.injections,
        100.0 * rates.caught as f64 / rates.injections as f64,
        rates.false_positives,
        rates.benign,
        100.0 * rates.false_positives as f64 / rates.benign as f64,
    );
    for m in &missed {
        eprintln!("  missed: {m:?}");
    }
    for (t, s) in &flagged {
        let names: Vec<&str> = s.signals.iter().map(Signal::as_str).collect();
        eprintln!("  false positive: {t:?} {names:?}");
    }
    rates
}

#[test]
fn corpora_are_large_enough() {
    assert!(load(INJECTIONS).len() >= 60);
    assert!(load(BENIGN).len() >= 250);
}

#[test]
fn detection_and_false_positive_rates() {
    let injections = load(INJECTIONS);
    let benign = load(BENIGN);
    let raw = measure(&injections, &benign, str::to_owned, "injection corpus");
    assert!(raw.caught * 100 >= raw.injections * 90, "detection below 90%");
    assert!(raw.false_positives * 100 <= raw.benign * 2, "false positives above 2%");
    // The same texts as they reach screening in practice: inside a
    // verbalised sentence.
    let embedded = measure(&injections, &benign, |t| format!("Viewed {t} at Acme Outdoors"), "inside a sentence");
    assert!(embedded.caught * 100 >= embedded.injections * 85, "embedded detection below 85%");
    assert!(embedded.false_positives * 100 <= embedded.benign * 2, "embedded false positives above 2%");
}

/// The held-out corpora were written after the detector, measured first
/// while unseen (those numbers are in their file headers), and only then
/// used for category-level fixes. Reported, with loose floors that catch
/// regressions rather than certify a rate.
#[test]
fn held_out_rates() {
    for (injections, benign, label) in
        [(INJECTIONS_HOLDOUT, BENIGN_HOLDOUT, "held-out corpus"), (INJECTIONS_BLIND, BENIGN_BLIND, "blind corpus")]
    {
        let rates = measure(&load(injections), &load(benign), str::to_owned, label);
        assert!(rates.caught * 100 >= rates.injections * 80, "{label}: detection collapsed");
        assert!(rates.false_positives * 100 <= rates.benign * 5, "{label}: false positives exploded");
    }
}

#[test]
fn flagged_corpus_lines_render_safely_when_neutralised() {
    let injections = load(INJECTIONS);
    let lines: Vec<RenderLine<'_>> = injections
        .iter()
        .map(|t| RenderLine { citation: "c1", text: t, event_time: 0, source: "Acme", occurrences: 1, flagged: true })
        .collect();
    let block = render_block(&lines);
    assert_eq!(block.split('\n').count(), lines.len() + 3);
    for line in block.split('\n').skip(2).take(lines.len()) {
        assert!(line.starts_with("[c1] 1970-01-01 | Acme | (flagged"), "{line}");
        assert!(!line.contains("im_start") && !line.contains("(INST)"), "{line}");
    }
}

/// `cargo test --lib render::corpus_tests::screen_cost -- --ignored --nocapture`
#[test]
#[ignore]
fn screen_cost() {
    let benign = load(BENIGN);
    let injections = load(INJECTIONS);
    let typical = "Purchased 2 × Trail Runner hiking boots (Footwear) for 129.99 USD at Acme Outdoors, size 44 EU";
    let _ = screen(typical);
    for (label, texts) in [
        ("typical 100-char sentence", vec![typical.to_owned()]),
        ("benign corpus", benign),
        ("injection corpus", injections),
    ] {
        let chars: usize = texts.iter().map(|t| t.chars().count()).sum();
        let rounds = (200_000 / texts.len()).max(1);
        let start = Instant::now();
        let mut flagged = 0usize;
        for _ in 0..rounds {
            for t in &texts {
                flagged += usize::from(screen(std::hint::black_box(t)).flagged());
            }
        }
        let per_call = start.elapsed().as_nanos() as f64 / (rounds * texts.len()) as f64;
        eprintln!(
            "{label}: {:.2} µs per screen() ({} texts, mean {} chars, {} flagged per round)",
            per_call / 1000.0,
            texts.len(),
            chars / texts.len(),
            flagged / rounds
        );
    }
}
