//! Chat-turn questions for one person and their graded labels, derived from
//! the generator's ground truth.
//!
//! Owns the question kinds, their phrasings and the grading rules. Labels
//! are per item (`"{source_id}/{item_id}"`), and only items with at least one
//! event allowed for the question's purpose are graded, from those allowed
//! events alone: an item known only through an LDU event or a source without
//! consent is, for the engine, an item it must not know. It does not decide
//! consent (the caller passes which events are allowed) and does not build
//! events.

use std::collections::{BTreeMap, HashMap};

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use context_engine::domain::{EventFamily, Purpose};

use super::activity::date;
use super::catalog::{APPS, CITIES, GAMES, SERVICES, SHOPS, SUBSCRIPTION_QUESTIONS};
use super::items::{Draft, ItemRef, Source};

const DAY: i64 = 86_400;

/// Every kind of question, in a fixed order.
pub const KINDS: [&str; 10] = [
    "trip_packing",
    "trip_paraphrase",
    "exact_game",
    "product_followup",
    "category_interest",
    "category_paraphrase",
    "subscriptions",
    "recent_activity",
    "app_progress",
    "order_history",
];

/// A question to ask, before phrasing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// Names the destination; bookings there grade 2, searches for it and
    /// bought travel gear grade 1.
    TripPacking { city: usize },
    /// The same question and labels, naming the destination only by
    /// description ("the Portuguese capital").
    TripParaphrase { city: usize },
    /// Names a game exactly; that game's events grade 2.
    ExactGame { game: usize },
    /// Names a product exactly; that product grades 2.
    ProductFollowup { shop: usize, product: usize },
    /// Names a category; its products grade 2 when carted or bought, 1 when
    /// only viewed; searches for it grade 1.
    CategoryInterest { shop: usize, category: usize },
    /// The same labels, asked without the category's words.
    CategoryParaphrase { shop: usize, category: usize },
    /// One of [`SUBSCRIPTION_QUESTIONS`]: paid plans grade 2, trials 1.
    Subscriptions { question: usize },
    /// Products and hotels looked at (viewed, wishlisted, carted) in the last
    /// 7 days: within 3 days grade 2, else 1.
    RecentActivity,
    /// An app's progress: the app (or, for language apps, the course) grades
    /// 2, its paid plan 1.
    AppProgress { app: usize },
    /// Names a shop: products bought there grade 2, carted only 1.
    OrderHistory { shop: usize },
}

impl Ask {
    pub fn kind(self) -> &'static str {
        let i = match self {
            Self::TripPacking { .. } => 0,
            Self::TripParaphrase { .. } => 1,
            Self::ExactGame { .. } => 2,
            Self::ProductFollowup { .. } => 3,
            Self::CategoryInterest { .. } => 4,
            Self::CategoryParaphrase { .. } => 5,
            Self::Subscriptions { .. } => 6,
            Self::RecentActivity => 7,
            Self::AppProgress { .. } => 8,
            Self::OrderHistory { .. } => 9,
        };
        KINDS[i]
    }

    /// Category questions double as feed-ranking requests now and then, so
    /// the benchmark also checks that a purpose sees its own grants.
    pub fn purpose(self, rng: &mut ChaCha8Rng) -> Purpose {
        match self {
            Self::CategoryInterest { .. } if rng.random_bool(0.3) => Purpose::FeedRanking,
            _ => Purpose::ChatAssistant,
        }
    }

    pub fn text(self, rng: &mut ChaCha8Rng, course: usize) -> String {
        let pick =
            |rng: &mut ChaCha8Rng, options: &[&str]| options.choose(rng).copied().unwrap_or_default().to_string();
        match self {
            Self::TripPacking { city } => pick(
                rng,
                &[
                    "What should I pack for my trip to {}?",
                    "I'm flying to {} soon, what should I bring?",
                    "Help me make a packing list for {}",
                ],
            )
            .replace("{}", CITIES[city].name),
            Self::TripParaphrase { city } => pick(
                rng,
                &[
                    "Any advice on what to bring for my upcoming getaway to {}?",
                    "What clothes will I need for my holiday in {}?",
                ],
            )
            .replace("{}", CITIES[city].descriptor),
            Self::ExactGame { game } => pick(
                rng,
                &[
                    "How far am I in {}?",
                    "What level did I reach in {}?",
                    "Which achievements have I unlocked in {}?",
                    "Remind me where I left off in {}",
                ],
            )
            .replace("{}", GAMES[game].title),
            Self::ProductFollowup { shop, product } => {
                let p = &SHOPS[shop].products[product];
                let template = if rng.random_bool(0.7) {
                    SHOPS[shop].categories[p.category].followup.to_string()
                } else {
                    pick(rng, &["Did I end up buying {}?", "What did I pay for {}?"])
                };
                template.replace("{}", p.name)
            }
            Self::CategoryInterest { shop, category } => SHOPS[shop].categories[category].ask.to_string(),
            Self::CategoryParaphrase { shop, category } => SHOPS[shop].categories[category].paraphrase.to_string(),
            Self::Subscriptions { question } => pick(rng, SUBSCRIPTION_QUESTIONS[question].1),
            Self::RecentActivity => pick(
                rng,
                &[
                    "What was I looking at this week?",
                    "Remind me what I was browsing in the last few days",
                    "Which things caught my eye recently?",
                ],
            ),
            Self::AppProgress { app } => {
                let a = &APPS[app];
                let language = a.courses.get(course % a.courses.len().max(1)).map_or("", |c| c.language);
                pick(rng, a.questions).replace("{}", language)
            }
            Self::OrderHistory { shop } => {
                pick(rng, &["What did I order from {}?", "What have I bought at {} recently?"])
                    .replace("{}", SHOPS[shop].name)
            }
        }
    }

    fn grade(self, item: ItemRef, seen: &Seen) -> u32 {
        match (self, item) {
            (Self::TripPacking { city } | Self::TripParaphrase { city }, item) => match item {
                ItemRef::Flight { city: c, .. } | ItemRef::Hotel { city: c, .. } | ItemRef::Tour { city: c }
                    if c == city =>
                {
                    2
                }
                ItemRef::FlightSearch { city: c } => u32::from(c == city),
                ItemRef::Product { shop, product } => {
                    let p = &SHOPS[shop].products[product];
                    u32::from(seen.purchased && SHOPS[shop].categories[p.category].travel_gear)
                }
                _ => 0,
            },
            (Self::ExactGame { game }, ItemRef::Game { game: g }) if g == game => 2,
            (Self::ProductFollowup { shop, product }, ItemRef::Product { shop: s, product: p })
                if s == shop && p == product =>
            {
                2
            }
            (
                Self::CategoryInterest { shop, category } | Self::CategoryParaphrase { shop, category },
                ItemRef::Product { shop: s, product },
            ) if s == shop && SHOPS[s].products[product].category == category => {
                if seen.purchased || seen.carted {
                    2
                } else {
                    1
                }
            }
            (
                Self::CategoryInterest { shop, category } | Self::CategoryParaphrase { shop, category },
                ItemRef::ShopSearch { shop: s, category: c },
            ) if s == shop && c == category => 1,
            (Self::Subscriptions { question }, ItemRef::Plan { source, .. }) => {
                let kind = match source {
                    Source::Service(s) => Some(SERVICES[s].kind),
                    Source::App(a) => APPS[a].plan_kind,
                    _ => None,
                };
                let wanted = SUBSCRIPTION_QUESTIONS[question].0;
                if wanted.is_some() && wanted != kind {
                    0
                } else if seen.subscribed {
                    2
                } else {
                    u32::from(seen.trial)
                }
            }
            (Self::RecentActivity, ItemRef::Product { .. } | ItemRef::Hotel { .. }) => match seen.looked_age {
                Some(age) if age <= 3 * DAY => 2,
                Some(age) if age <= 7 * DAY => 1,
                _ => 0,
            },
            (Self::AppProgress { app }, ItemRef::App { app: a }) if a == app => {
                if APPS[app].courses.is_empty() {
                    2
                } else {
                    1
                }
            }
            (Self::AppProgress { app }, ItemRef::Course { app: a, .. }) if a == app => 2,
            (Self::AppProgress { app }, ItemRef::Plan { source: Source::App(a), .. }) if a == app => 1,
            (Self::OrderHistory { shop }, ItemRef::Product { shop: s, .. }) if s == shop => {
                if seen.purchased {
                    2
                } else {
                    u32::from(seen.carted)
                }
            }
            _ => 0,
        }
    }
}

/// What the allowed events say about one item.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    purchased: bool,
    carted: bool,
    subscribed: bool,
    trial: bool,
    /// Seconds since the latest view, wishlist, cart or checkout.
    looked_age: Option<i64>,
}

/// Items known through allowed events, with what those events say.
pub struct Knowledge {
    items: BTreeMap<String, (ItemRef, Seen)>,
}

impl Knowledge {
    /// `allowed[i]` says whether `drafts[i]` may be used.
    pub fn new(drafts: &[Draft], allowed: &[bool], now: i64) -> Self {
        let mut items: BTreeMap<String, (ItemRef, Seen)> = BTreeMap::new();
        for (draft, _) in drafts.iter().zip(allowed).filter(|(_, ok)| **ok) {
            let entry = items.entry(draft.item_key.clone()).or_insert((draft.item, Seen::default()));
            let seen = &mut entry.1;
            let event = &draft.event;
            match event.event_name.as_str() {
                "Purchase" => seen.purchased = true,
                "Subscribe" => seen.subscribed = true,
                "StartTrial" => seen.trial = true,
                _ => {}
            }
            let family = event.family();
            if family == EventFamily::Cart && event.event_name != "AddToWishlist" {
                seen.carted = true;
            }
            if matches!(family, EventFamily::Cart | EventFamily::View) {
                let age = now - event.event_time;
                seen.looked_age = Some(seen.looked_age.map_or(age, |a| a.min(age)));
            }
        }
        Self { items }
    }

    /// Graded labels for `ask`; empty when nothing allowed is relevant.
    pub fn labels(&self, ask: Ask) -> HashMap<String, u32> {
        self.items
            .iter()
            .filter_map(|(key, (item, seen))| {
                let grade = ask.grade(*item, seen);
                (grade > 0).then(|| (key.clone(), grade))
            })
            .collect()
    }
}

/// Every question this person's activity could answer (allowed or not), in
/// a stable order, without repeats. Packing questions are asked only about
/// trips still ahead on `now`.
pub fn candidates(drafts: &[Draft], now: i64) -> Vec<Ask> {
    let today = date(now);
    let mut asks = vec![Ask::RecentActivity];
    let mut add = |ask: Ask| {
        if !asks.contains(&ask) {
            asks.push(ask);
        }
    };
    for draft in drafts {
        match draft.item {
            ItemRef::Flight { city, .. } | ItemRef::Hotel { city, .. } | ItemRef::Tour { city } => {
                let ahead = draft.event.custom_data.properties.get("travel_date").is_some_and(|d| *d >= today);
                if ahead {
                    add(Ask::TripPacking { city });
                    add(Ask::TripParaphrase { city });
                }
            }
            ItemRef::FlightSearch { .. } => {}
            ItemRef::Game { game } => add(Ask::ExactGame { game }),
            ItemRef::Product { shop, product } => {
                let category = SHOPS[shop].products[product].category;
                add(Ask::ProductFollowup { shop, product });
                add(Ask::CategoryInterest { shop, category });
                add(Ask::CategoryParaphrase { shop, category });
                if draft.event.event_name == "Purchase" {
                    add(Ask::OrderHistory { shop });
                }
            }
            ItemRef::ShopSearch { shop, category } => {
                add(Ask::CategoryInterest { shop, category });
                add(Ask::CategoryParaphrase { shop, category });
            }
            ItemRef::App { app } | ItemRef::Course { app, .. } => add(Ask::AppProgress { app }),
            ItemRef::Plan { source, .. } => {
                let kind = match source {
                    Source::Service(s) => Some(SERVICES[s].kind),
                    Source::App(a) => APPS[a].plan_kind,
                    _ => None,
                };
                for (question, (wanted, _)) in SUBSCRIPTION_QUESTIONS.iter().enumerate() {
                    if wanted.is_none() || *wanted == kind {
                        add(Ask::Subscriptions { question });
                    }
                }
            }
            ItemRef::Account { .. } => {}
        }
    }
    asks
}

/// Orders candidates so that taking the first N spreads over kinds: kinds in
/// a random order, then one question of each kind in turn.
pub fn interleave(asks: Vec<Ask>, rng: &mut ChaCha8Rng) -> Vec<Ask> {
    let mut by_kind: Vec<Vec<Ask>> =
        KINDS.iter().map(|kind| asks.iter().copied().filter(|a| a.kind() == *kind).collect()).collect();
    for group in &mut by_kind {
        group.shuffle(rng);
    }
    by_kind.shuffle(rng);
    let total = asks.len();
    let mut out = Vec::with_capacity(total);
    for round in 0..total {
        for group in &by_kind {
            if let Some(&ask) = group.get(round) {
                out.push(ask);
            }
        }
        if out.len() == total {
            break;
        }
    }
    out
}
