//! Screening and token-budget packing: walks the groups in rank order,
//! screens each one's untrusted text (dropping or neutralising what reads
//! like instructions), and keeps every snippet that still fits the budget
//! (a lower-ranked short snippet may fill room a long one could not).
//!
//! The budget is for the whole rendered block, header and footer included,
//! counted with a real tokenizer. Each candidate line is counted alone (the
//! frame once per counter), never re-tokenising the header with it. Where
//! the tokenizer's tokens never span a line break (whitespace-splitting
//! pre-tokenizers such as BERT's), the block's count is the frame's plus
//! the lines', exactly; for any other tokenizer the finished block is
//! counted as a whole and trimmed from the end until it fits, so the bound
//! holds for every tokenizer.

use chrono::DateTime;

use super::collapse::Group;
use super::Candidate;
use crate::block::{self, InjectionPolicy, RenderLine};
use crate::domain::{Provenance, Snippet};
use ce_screen::{InjectionHead, Screener, Signal};

/// Counts tokens the way the target LLM will.
pub trait CountTokens: Send + Sync {
    fn count(&self, text: &str) -> usize;

    /// True only when no token can span a line break, so that texts joined
    /// by line breaks count as the sum of their parts. Packing then skips
    /// counting the finished block; a wrong `true` breaks the budget.
    fn lines_add_up(&self) -> bool {
        false
    }

    /// Tokens of [`block::block_frame`]; counters may compute it once.
    fn frame_tokens(&self) -> usize {
        self.count(&block::block_frame())
    }
}

/// The learned head's probability for a candidate: the score stored at
/// ingest if this head computed it, else computed now from the stored vector
/// and text (a record from before the head, or from another head). `None` if
/// the vector does not fit the head.
pub fn learned_score(head: &InjectionHead, point: &Candidate) -> Option<f32> {
    let record = &point.record;
    match (record.injection_score, record.injection_head.as_deref()) {
        (Some(p), Some(id)) if id == head.id() => Some(p),
        _ => (point.vector.len() == head.dimension()).then(|| head.probability(&point.vector, &record.text)),
    }
}

/// What packing produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packed {
    pub snippets: Vec<Snippet>,
    /// The prompt-ready block; empty when no snippet made it.
    pub rendered: String,
    /// Tokens of `rendered`.
    pub tokens: usize,
    /// Snippets kept with injection flags (neutralise policy).
    pub flagged: usize,
    /// Snippets dropped for injection signals (drop policy).
    pub dropped_injection: usize,
    /// Snippets that did not fit the token budget.
    pub dropped_budget: usize,
}

pub struct PackRequest<'a> {
    pub candidates: &'a [Candidate],
    pub groups: &'a [Group],
    /// Group indexes, best first.
    pub order: &'a [usize],
    pub max_snippets: usize,
    pub max_tokens: usize,
    pub policy: InjectionPolicy,
    /// A candidate list was cut at its length, so a group may have more
    /// repeats in the store than it holds: counts then say "at least".
    pub lists_full: bool,
    /// The injection detector every line's untrusted text goes through.
    pub screener: &'a dyn Screener,
    /// The learned head: a line whose event scored at or above its
    /// threshold at ingest (or, for a record without a score, whose stored
    /// vector does now) is flagged like a rule finding.
    pub learned: Option<&'a InjectionHead>,
}

fn date(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// The sentence of a group: the latest event's, with how often and when
/// first when repeats were collapsed.
fn sentence(candidates: &[Candidate], group: &Group, lists_full: bool) -> String {
    let latest = &candidates[group.latest()].record;
    if let Some(note) = &group.note {
        return format!("{}{note}", latest.text);
    }
    let n = group.members.len();
    if n == 1 {
        return latest.text.clone();
    }
    let first = group.members.iter().map(|&m| candidates[m].record.event.event_time).min().unwrap_or(0);
    let at_least = if lists_full { "at least " } else { "" };
    format!("{} ({at_least}{n} times since {}, last on {})", latest.text, date(first), date(latest.event.event_time))
}

#[derive(Clone)]
struct Line {
    group: usize,
    citation: String,
    text: String,
    flags: Vec<String>,
    cost: usize,
}

fn render_line<'a>(candidates: &'a [Candidate], groups: &[Group], l: &'a Line) -> RenderLine<'a> {
    let g = &groups[l.group];
    let event = &candidates[g.latest()].record.event;
    RenderLine {
        citation: &l.citation,
        text: &l.text,
        event_time: event.event_time,
        source: event.source_display(),
        // `sentence` already says how often.
        occurrences: 1,
        flagged: !l.flags.is_empty(),
    }
}

fn render_lines(candidates: &[Candidate], groups: &[Group], lines: &[Line]) -> String {
    let render: Vec<RenderLine<'_>> = lines.iter().map(|l| render_line(candidates, groups, l)).collect();
    block::render_block(&render)
}

pub fn pack(request: PackRequest<'_>, counter: &dyn CountTokens) -> Packed {
    let PackRequest { candidates, groups, order, max_snippets, max_tokens, policy, lists_full, screener, learned } =
        request;
    let mut packed = Packed::default();
    let mut lines: Vec<Line> = Vec::new();
    // Tokens of the opening, header and closing.
    let frame = counter.frame_tokens();
    let additive = counter.lines_add_up();
    let mut estimate = 0usize;
    for &g in order {
        if lines.len() >= max_snippets {
            break;
        }
        let group = &groups[g];
        let event = &candidates[group.latest()].record.event;
        let raw = sentence(candidates, group, lists_full);
        let mut screening = screener.screen(&raw);
        let in_sentence = screening.signals.clone();
        let url_flagged = !event.event_source_url.is_empty() && {
            let url = screener.screen(&event.event_source_url).signals;
            screening.signals.extend(&url);
            !url.is_empty()
        };
        if let Some(head) = learned {
            let latest = &candidates[group.latest()];
            if let Some(p) = learned_score(head, latest) {
                if p >= head.threshold() {
                    screening.signals.push(Signal::LearnedInstruction);
                } else if !url_flagged && !head.decide(p, &in_sentence) {
                    // Only soft signals, outweighed in the head's decision.
                    screening.signals.clear();
                }
            }
        }
        screening.signals.sort();
        screening.signals.dedup();
        let flags: Vec<String> = screening.signals.iter().map(|s| s.as_str().to_string()).collect();
        let text = if flags.is_empty() {
            block::sanitize(&raw)
        } else if policy == InjectionPolicy::Drop {
            packed.dropped_injection += 1;
            continue;
        } else {
            block::neutralize(&raw)
        };
        let citation = format!("c{}", lines.len() + 1);
        let mut line = Line { group: g, citation, text, flags, cost: 0 };
        line.cost = counter.count(&block::render_line(lines.len(), &render_line(candidates, groups, &line)));
        if frame + estimate + line.cost > max_tokens {
            packed.dropped_budget += 1;
            continue;
        }
        estimate += line.cost;
        lines.push(line);
    }
    // Exact check of the whole block; trim from the end until it fits.
    loop {
        if lines.is_empty() {
            break;
        }
        let rendered = render_lines(candidates, groups, &lines);
        let tokens =
            if additive { frame + lines.iter().map(|l| l.cost).sum::<usize>() } else { counter.count(&rendered) };
        if tokens <= max_tokens {
            packed.rendered = rendered;
            packed.tokens = tokens;
            break;
        }
        lines.pop();
        packed.dropped_budget += 1;
    }
    for line in lines {
        let group = &groups[line.group];
        let latest = &candidates[group.latest()];
        let event = &latest.record.event;
        if !line.flags.is_empty() {
            packed.flagged += 1;
        }
        packed.snippets.push(Snippet {
            citation_id: line.citation,
            text: line.text,
            score: group.score,
            family: event.family().as_str().to_string(),
            provenance: Provenance {
                source_id: event.source_id.clone(),
                event_id: event.event_id.clone(),
                event_name: event.event_name.clone(),
                event_time: event.event_time,
                ingested_at: latest.record.ingested_at,
                point_id: latest.point_id.clone(),
                content_hash: latest.record.content_hash.clone(),
                consent_version: latest.consent_version,
            },
            occurrences: group.members.len() as u32,
            first_event_time: group
                .members
                .iter()
                .map(|&m| candidates[m].record.event.event_time)
                .min()
                .unwrap_or(event.event_time),
            collapsed_event_ids: group.members[1..]
                .iter()
                .map(|&m| candidates[m].record.event.event_id.clone())
                .collect(),
            flags: line.flags,
        });
    }
    packed
}
