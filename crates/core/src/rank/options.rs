//! Ranking knobs: the server's defaults ([`RankingOptions`]) and what one
//! request may override ([`RankingOverrides`]), validated field by field.

use crate::block::InjectionPolicy;
use crate::domain::{EventFamily, FieldError, RetrievalMode};

/// How the dense and sparse lists become one relevance score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Reciprocal rank fusion, `Σ 1/(k + rank)`, scaled so that rank 1 in
    /// both lists scores 1.
    Rrf { k: f32 },
    /// `w · cosine + (1 − w) · bm25 / max bm25` over the candidates.
    Convex { dense_weight: f32 },
}

/// Which fusion, without its parameter (what `--fusion` selects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum FusionKind {
    Rrf,
    Convex,
}

impl Fusion {
    pub fn kind(&self) -> FusionKind {
        match self {
            Self::Rrf { .. } => FusionKind::Rrf,
            Self::Convex { .. } => FusionKind::Convex,
        }
    }
}

/// Recency half-life per event family, in days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfLives([f64; EventFamily::ALL.len()]);

impl Default for HalfLives {
    /// What a purchase or a subscription says about a person lasts longer
    /// than a page view or a search.
    fn default() -> Self {
        let mut days = [30.0; EventFamily::ALL.len()];
        for family in EventFamily::ALL {
            days[family.index()] = match family {
                EventFamily::Purchase => 180.0,
                EventFamily::Cart => 30.0,
                EventFamily::View => 14.0,
                EventFamily::Search => 14.0,
                EventFamily::Signup => 365.0,
                EventFamily::AppGame => 30.0,
                EventFamily::Travel => 90.0,
                EventFamily::Custom => 60.0,
            };
        }
        Self(days)
    }
}

impl HalfLives {
    pub fn days(&self, family: EventFamily) -> f64 {
        self.0[family.index()]
    }

    pub fn set(&mut self, family: EventFamily, days: f64) {
        self.0[family.index()] = days;
    }
}

/// Longest accepted half-life: ten years.
const MAX_HALF_LIFE_DAYS: f64 = 3650.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankingOptions {
    pub mode: RetrievalMode,
    pub fusion: Fusion,
    /// Multiply relevance by the recency weight (see `score`).
    pub recency: bool,
    pub half_lives: HalfLives,
    /// Weight of an infinitely old event: relevance never decays below
    /// this share, so an old but exact match still surfaces.
    pub recency_floor: f32,
    /// Merge repeated events about one item into one snippet.
    pub collapse: bool,
    /// 0 = rank by score only; 1 = maximal novelty (MMR with λ = 1 − diversity).
    pub diversity: f32,
    /// Candidates whose final score is below this are dropped.
    pub min_score: f32,
    pub injection_policy: InjectionPolicy,
    /// Length of each candidate list fetched from the store.
    pub candidates: usize,
}

impl Default for RankingOptions {
    fn default() -> Self {
        Self {
            mode: RetrievalMode::Hybrid,
            // Chosen on the activity benchmark (eval/README.md): RRF's flat
            // scores let recency and diversity override relevance.
            fusion: Fusion::Convex { dense_weight: 0.7 },
            recency: true,
            half_lives: HalfLives::default(),
            recency_floor: 0.35,
            collapse: true,
            diversity: 0.2,
            min_score: 0.0,
            injection_policy: InjectionPolicy::Drop,
            candidates: 64,
        }
    }
}

/// What one request may change; `None` keeps the server default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RankingOverrides {
    pub mode: Option<RetrievalMode>,
    pub recency: Option<bool>,
    /// `(family name, days)`, e.g. `("view", 7.0)`.
    pub half_life_days: Vec<(String, f64)>,
    pub collapse: Option<bool>,
    pub diversity: Option<f32>,
    pub min_score: Option<f32>,
    pub injection_policy: Option<InjectionPolicy>,
}

fn invalid(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_string(), message: message.into() }
}

impl RankingOptions {
    /// The options for one request: these defaults with `overrides` applied.
    pub fn with(&self, overrides: &RankingOverrides) -> Result<Self, FieldError> {
        let mut options = *self;
        if let Some(mode) = overrides.mode {
            options.mode = mode;
        }
        if let Some(recency) = overrides.recency {
            options.recency = recency;
        }
        for (name, days) in &overrides.half_life_days {
            let family = EventFamily::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = EventFamily::ALL.iter().map(|f| f.as_str()).collect();
                invalid("ranking.half_life_days", format!("unknown event family {name:?}; known: {}", known.join(", ")))
            })?;
            if !(days.is_finite() && *days > 0.0 && *days <= MAX_HALF_LIFE_DAYS) {
                return Err(invalid(
                    "ranking.half_life_days",
                    format!("{name}: expected days in (0, {MAX_HALF_LIFE_DAYS}], got {days}"),
                ));
            }
            options.half_lives.set(family, *days);
        }
        if let Some(collapse) = overrides.collapse {
            options.collapse = collapse;
        }
        if let Some(diversity) = overrides.diversity {
            if !(0.0..=1.0).contains(&diversity) {
                return Err(invalid("ranking.diversity", format!("expected a number in [0, 1], got {diversity}")));
            }
            options.diversity = diversity;
        }
        if let Some(min_score) = overrides.min_score {
            if !(0.0..=1.0).contains(&min_score) {
                return Err(invalid("ranking.min_score", format!("expected a number in [0, 1], got {min_score}")));
            }
            options.min_score = min_score;
        }
        if let Some(policy) = overrides.injection_policy {
            options.injection_policy = policy;
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_apply_and_bad_values_name_their_field() {
        let base = RankingOptions::default();
        let o = RankingOverrides {
            mode: Some(RetrievalMode::Dense),
            recency: Some(false),
            half_life_days: vec![("view".into(), 3.0)],
            diversity: Some(0.0),
            ..Default::default()
        };
        let got = base.with(&o).unwrap();
        assert_eq!(got.mode, RetrievalMode::Dense);
        assert!(!got.recency);
        assert_eq!(got.half_lives.days(EventFamily::View), 3.0);
        assert_eq!(got.half_lives.days(EventFamily::Purchase), 180.0);
        assert_eq!(got.diversity, 0.0);

        let bad = |o: RankingOverrides| base.with(&o).unwrap_err().field;
        assert_eq!(bad(RankingOverrides { diversity: Some(1.5), ..Default::default() }), "ranking.diversity");
        assert_eq!(bad(RankingOverrides { min_score: Some(f32::NAN), ..Default::default() }), "ranking.min_score");
        assert_eq!(
            bad(RankingOverrides { half_life_days: vec![("vieww".into(), 3.0)], ..Default::default() }),
            "ranking.half_life_days"
        );
        assert_eq!(
            bad(RankingOverrides { half_life_days: vec![("view".into(), 0.0)], ..Default::default() }),
            "ranking.half_life_days"
        );
    }
}
