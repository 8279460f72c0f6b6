//! One person's activity: which businesses they use and the stories of
//! events they leave there (browse → cart → buy, play a game for weeks, book
//! a trip, start a trial and keep paying).
//!
//! Owns event construction and timing, and the open-ended stories (shops,
//! trips); the threads that continue over time (games, apps, subscriptions)
//! are in `activity/threads.rs`. Every event is built to pass
//! `ActivityEvent::validate`, and remembers which item it is about
//! ([`ItemRef`]) so labels can be derived later. It does not decide consent,
//! LDU or injections, and it does not label queries.

use std::collections::BTreeMap;

use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use context_engine::domain::{ActivityEvent, Content, CustomData};

use super::catalog::{AIRLINE, APPS, CITIES, GAMES, HOMES, HOTELS, SERVICES, SHOPS, TOURS};
use super::items::{Draft, ItemRef, Source};

mod threads;

use threads::{AppState, GameState, ServiceState};

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// Who a person is: where they live and which businesses they use.
pub struct Persona {
    pub home: usize,
    pub sources: Vec<Source>,
    pub games: Vec<usize>,
    pub course: usize,
}

impl Persona {
    pub fn draw(rng: &mut ChaCha8Rng) -> Self {
        let home = rng.random_range(0..HOMES.len());
        let mut sources: Vec<Source> = Source::all()
            .into_iter()
            .filter(|s| {
                let p = match s {
                    Source::Shop(_) => 0.55,
                    Source::Games => 0.45,
                    Source::App(_) => 0.35,
                    Source::Airline => 0.45,
                    Source::Hotels => 0.4,
                    Source::Tours => 0.25,
                    Source::Service(_) => 0.3,
                };
                rng.random_bool(p)
            })
            .collect();
        // Everyone shops somewhere: shop stories are open-ended, while games,
        // apps and subscriptions are threads that run out as they reach now.
        if !sources.iter().any(|s| matches!(s, Source::Shop(_))) {
            sources.push(Source::Shop(rng.random_range(0..SHOPS.len())));
        }
        // Everyone uses a few businesses; a near-empty profile tests nothing.
        let all = Source::all();
        while sources.len() < 3 {
            if let Some(&s) = all.choose(rng) {
                if !sources.contains(&s) {
                    sources.push(s);
                }
            }
        }
        sources.sort();
        let mut games: Vec<usize> = (0..GAMES.len()).collect();
        games.shuffle(rng);
        games.truncate(rng.random_range(1..=4));
        let course = rng.random_range(0..APPS.iter().map(|a| a.courses.len()).max().unwrap_or(1).max(1));
        Self { home, sources, games, course }
    }
}

/// Counts down a story's age (seconds before `now`); a story that would run
/// into the future simply has not happened yet, so it stops.
struct Clock {
    age: i64,
}

impl Clock {
    fn step(&mut self, gap: i64) -> Option<i64> {
        if self.age - gap < MINUTE {
            return None;
        }
        self.age -= gap;
        Some(self.age)
    }
}

/// How an event reached the business: its `action_source` and page URL.
struct Via<'s> {
    action: &'s str,
    url: String,
}

impl Via<'static> {
    fn app() -> Self {
        Self { action: "app", url: String::new() }
    }

    fn web(url: String) -> Self {
        Self { action: "website", url }
    }
}

/// Builds one person's events.
struct Writer<'a> {
    rng: &'a mut ChaCha8Rng,
    user_id: &'a str,
    persona: &'a Persona,
    now: i64,
    days: i64,
    next_event: u32,
    next_booking: u32,
    registered: Vec<Source>,
    games: BTreeMap<usize, GameState>,
    apps: [Option<AppState>; APPS.len()],
    services: [Option<ServiceState>; SERVICES.len()],
    drafts: Vec<Draft>,
}

/// Rough exchange rates from the catalog's base prices.
fn convert(price: f64, currency: &str) -> f64 {
    let rate = match currency {
        "GBP" => 0.85,
        "USD" => 1.1,
        "CAD" => 1.5,
        "SEK" => 11.0,
        _ => 1.0,
    };
    ((price * rate) * 100.0).round() / 100.0
}

/// `YYYY-MM-DD` (UTC) of a unix time.
pub fn date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

impl<'a> Writer<'a> {
    fn new(rng: &'a mut ChaCha8Rng, user_id: &'a str, persona: &'a Persona, now: i64, days: i64) -> Self {
        Self {
            rng,
            user_id,
            persona,
            now,
            days: days.max(1),
            next_event: 0,
            next_booking: 0,
            registered: Vec::new(),
            games: BTreeMap::new(),
            apps: [None; APPS.len()],
            services: [None; SERVICES.len()],
            drafts: Vec::new(),
        }
    }

    fn currency(&self) -> &'static str {
        HOMES[self.persona.home].1
    }

    fn money(&self, base: f64) -> (Option<f64>, String) {
        (Some(convert(base, self.currency())), self.currency().to_string())
    }

    /// A story starts somewhere in the window, more often recently: people's
    /// activity is denser in the last two weeks than six months back.
    fn clock(&mut self) -> Clock {
        let recent = self.days.min(14);
        let window = if self.rng.random_bool(0.3) { recent } else { self.days };
        Clock { age: self.rng.random_range(10 * MINUTE..window * DAY) }
    }

    fn minutes(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo * MINUTE..=hi * MINUTE)
    }

    fn days(&mut self, lo: i64, hi: i64) -> i64 {
        self.rng.random_range(lo * DAY..=hi * DAY) + self.rng.random_range(0..6 * HOUR)
    }

    fn push(&mut self, source: Source, name: &str, age: i64, item: ItemRef, data: CustomData, via: Via<'_>) {
        self.next_event += 1;
        let event = ActivityEvent {
            event_id: format!("ev-{}-{:05}", self.user_id, self.next_event),
            user_id: self.user_id.to_string(),
            source_id: source.id().to_string(),
            source_name: source.name().to_string(),
            event_name: name.to_string(),
            event_time: self.now - age,
            action_source: via.action.to_string(),
            custom_data: data,
            event_source_url: via.url,
            data_processing_options: Vec::new(),
        };
        let item_key = item.key(self.user_id);
        self.drafts.push(Draft { event, item, item_key });
    }

    fn register_once(&mut self, source: Source, age: i64) {
        if self.registered.contains(&source) {
            return;
        }
        self.registered.push(source);
        let url = format!("https://{}/account/new", source.info().2);
        let url = if source.info().2.is_empty() { String::new() } else { url };
        self.push(
            source,
            "CompleteRegistration",
            age,
            ItemRef::Account { source },
            CustomData::default(),
            Via::web(url),
        );
    }

    /// Plays one story at `source`.
    fn story(&mut self, source: Source) {
        match source {
            Source::Shop(shop) => self.shop(shop),
            Source::Games => self.game(),
            Source::App(app) => self.app(app),
            Source::Service(s) => self.service(s),
            Source::Airline | Source::Hotels | Source::Tours => self.trip(),
        }
    }

    /// Browse, maybe cart and check out, maybe buy; staples are bought again
    /// and again.
    fn shop(&mut self, shop: usize) {
        let source = Source::Shop(shop);
        let s = &SHOPS[shop];
        let index = self.rng.random_range(0..s.products.len());
        let product = &s.products[index];
        let category = &s.categories[product.category];
        let item = ItemRef::Product { shop, product: index };
        let mut clock = self.clock();
        let action = if self.rng.random_bool(0.7) { "website" } else { "app" };
        let url = |action: &str| {
            if action == "website" {
                format!("https://{}/p/{}", s.domain, product.id)
            } else {
                String::new()
            }
        };
        if self.rng.random_bool(0.08) {
            self.register_once(source, clock.age);
        }
        let (value, currency) = self.money(product.price);
        let about = || CustomData {
            content_name: product.name.to_string(),
            content_category: category.label.to_string(),
            content_ids: vec![product.id.to_string()],
            content_type: "product".into(),
            value,
            currency: currency.clone(),
            ..Default::default()
        };
        if self.rng.random_bool(0.35) {
            let data = CustomData {
                search_string: category.search.to_string(),
                content_category: category.label.to_string(),
                ..Default::default()
            };
            let search = ItemRef::ShopSearch { shop, category: product.category };
            let search_url = format!("https://{}/search?q={}", s.domain, category.search.replace(' ', "+"));
            self.push(source, "Search", clock.age, search, data, Via::web(search_url));
            let gap = self.minutes(1, 15);
            if clock.step(gap).is_none() {
                return;
            }
        }
        let views = if s.staples { self.rng.random_range(0..=1) } else { self.rng.random_range(1..=4) };
        for v in 0..views {
            if v > 0 {
                let gap = self.days(1, 6);
                if clock.step(gap).is_none() {
                    return;
                }
            }
            self.push(source, "ViewContent", clock.age, item, about(), Via { action, url: url(action) });
        }
        let buy = |w: &mut Self, clock: &Clock, action: &str| {
            let quantity = if product.price < 20.0 { w.rng.random_range(1..=3) } else { 1 };
            let (value, currency) = w.money(product.price * f64::from(quantity));
            let data = CustomData {
                num_items: Some(quantity),
                contents: vec![Content {
                    id: product.id.to_string(),
                    quantity,
                    item_price: Some(convert(product.price, &currency)),
                    title: String::new(),
                }],
                value,
                currency,
                ..about()
            };
            let url = if action == "website" { format!("https://{}/checkout/done", s.domain) } else { String::new() };
            w.push(source, "Purchase", clock.age, item, data, Via { action, url });
        };
        if s.staples {
            for _ in 0..self.rng.random_range(1..=5) {
                if self.rng.random_bool(0.4) {
                    self.push(source, "AddToCart", clock.age, item, about(), Via { action, url: url(action) });
                    let gap = self.minutes(2, 30);
                    if clock.step(gap).is_none() {
                        return;
                    }
                }
                buy(self, &clock, action);
                let gap = self.days(5, 14);
                if clock.step(gap).is_none() {
                    return;
                }
            }
            return;
        }
        if self.rng.random_bool(0.15) {
            let gap = self.minutes(1, 20);
            if clock.step(gap).is_none() {
                return;
            }
            self.push(source, "AddToWishlist", clock.age, item, about(), Via { action, url: url(action) });
        }
        if self.rng.random_bool(0.4) {
            let gap = self.minutes(1, 3 * 24 * 60);
            if clock.step(gap).is_none() {
                return;
            }
            self.push(source, "AddToCart", clock.age, item, about(), Via { action, url: url(action) });
            if !self.rng.random_bool(0.65) {
                return;
            }
            let gap = self.minutes(1, 60);
            if clock.step(gap).is_none() {
                return;
            }
            self.push(source, "InitiateCheckout", clock.age, item, about(), Via { action, url: url(action) });
            if self.rng.random_bool(0.8) {
                let gap = self.minutes(2, 20);
                if clock.step(gap).is_some() {
                    buy(self, &clock, action);
                }
            }
        } else if self.rng.random_bool(0.08) {
            let gap = self.days(0, 10);
            if clock.step(gap).is_some() {
                buy(self, &clock, "physical_store");
            }
        }
    }

    /// A trip to one city: flight (maybe after searching), hotel (after
    /// looking at it), maybe a tour, each at the travel businesses this
    /// person uses.
    fn trip(&mut self) {
        let city_index = self.rng.random_range(0..CITIES.len());
        let city = &CITIES[city_index];
        let home = HOMES[self.persona.home].0;
        let mut clock = self.clock();
        // Most trips are ahead; some were taken already.
        let booked_at = self.now - clock.age;
        let travel = if self.rng.random_bool(0.75) {
            self.now + self.rng.random_range(5..=90) * DAY
        } else {
            booked_at + (clock.age / 2).max(DAY)
        };
        let nights = self.rng.random_range(2..=9);
        let has = |s: Source| self.persona.sources.contains(&s);
        let (airline, hotels, tours) = (has(Source::Airline), has(Source::Hotels), has(Source::Tours));
        if airline {
            if self.rng.random_bool(0.5) {
                let data = CustomData { search_string: format!("flights to {}", city.name), ..Default::default() };
                let url = format!("https://{}/search?to={}", AIRLINE.2, city.slug);
                let item = ItemRef::FlightSearch { city: city_index };
                self.push(Source::Airline, "Search", clock.age, item, data, Via::web(url));
                let gap = self.minutes(2, 40);
                if clock.step(gap).is_none() {
                    return;
                }
            }
            self.next_booking += 1;
            let passengers = if self.rng.random_bool(0.6) { 1 } else { self.rng.random_range(2..=4) };
            let fare = self.rng.random_range(90..=900) as f64 * f64::from(passengers);
            let (value, currency) = self.money(fare);
            let cabin = if self.rng.random_bool(0.85) { "Economy" } else { "Business" };
            let plural = if passengers == 1 { "" } else { "s" };
            let mut data = CustomData {
                content_name: format!("{cabin} return, {passengers} passenger{plural}"),
                num_items: Some(passengers),
                value,
                currency,
                ..Default::default()
            };
            data.properties.insert("origin".into(), home.to_string());
            data.properties.insert("destination".into(), city.name.to_string());
            data.properties.insert("travel_date".into(), date(travel));
            let item = ItemRef::Flight { city: city_index, booking: self.next_booking };
            let url = format!("https://{}/booking/confirmed", AIRLINE.2);
            self.push(Source::Airline, "FlightBooked", clock.age, item, data, Via::web(url));
        }
        if hotels && (!airline || self.rng.random_bool(0.8)) {
            let h = self.rng.random_range(0..2);
            let (hotel_id, hotel_name) = city.hotels[h];
            let item = ItemRef::Hotel { city: city_index, hotel: h };
            let url = format!("https://{}/hotels/{hotel_id}", HOTELS.2);
            let mut about = CustomData {
                content_name: hotel_name.to_string(),
                content_category: "Hotel".into(),
                content_ids: vec![hotel_id.to_string()],
                ..Default::default()
            };
            about.properties.insert("destination".into(), city.name.to_string());
            for _ in 0..self.rng.random_range(1..=3) {
                let gap = self.minutes(5, 2 * 24 * 60);
                if clock.step(gap).is_none() {
                    return;
                }
                self.push(Source::Hotels, "ViewContent", clock.age, item, about.clone(), Via::web(url.clone()));
            }
            let gap = self.minutes(5, 24 * 60);
            if clock.step(gap).is_none() {
                return;
            }
            let nightly = self.rng.random_range(70..=320) as f64;
            let (value, currency) = self.money(nightly * nights as f64);
            let mut data = CustomData { value, currency, ..about };
            data.properties.insert("travel_date".into(), date(travel));
            data.properties.insert("nights".into(), nights.to_string());
            self.push(Source::Hotels, "HotelBooked", clock.age, item, data, Via::web(url));
        }
        if tours && self.rng.random_bool(0.7) {
            let gap = self.days(0, 5);
            if clock.step(gap).is_none() {
                return;
            }
            let (tour_id, tour_name) = city.tour;
            let price = self.rng.random_range(40..=180) as f64;
            let (value, currency) = self.money(price);
            let mut data = CustomData {
                content_name: tour_name.to_string(),
                content_ids: vec![tour_id.to_string()],
                value,
                currency,
                ..Default::default()
            };
            data.properties.insert("destination".into(), city.name.to_string());
            data.properties.insert("travel_date".into(), date(travel + self.rng.random_range(1..=nights.max(1)) * DAY));
            let url = format!("https://{}/tours/{tour_id}", TOURS.2);
            self.push(Source::Tours, "TripBooked", clock.age, ItemRef::Tour { city: city_index }, data, Via::web(url));
        }
    }
}

/// Plays stories at this person's businesses, picked by weight, until there
/// are `target` events; returns at most `target`, in time order.
pub fn events(
    rng: &mut ChaCha8Rng,
    user_id: &str,
    persona: &Persona,
    now: i64,
    days: i64,
    target: usize,
) -> Vec<Draft> {
    let mut writer = Writer::new(rng, user_id, persona, now, days);
    let weights: Vec<f64> = persona.sources.iter().map(|&s| story_weight(s)).collect();
    let total: f64 = weights.iter().sum();
    // Stories can end early or never start (a thread that has reached now);
    // the bound only guards against looping forever.
    for _ in 0..target.saturating_mul(20).max(100) {
        if writer.drafts.len() >= target {
            break;
        }
        let mut pick = writer.rng.random::<f64>() * total;
        let mut chosen = None;
        for (&source, &weight) in persona.sources.iter().zip(&weights) {
            chosen = Some(source);
            if pick < weight {
                break;
            }
            pick -= weight;
        }
        if let Some(source) = chosen {
            writer.story(source);
        }
    }
    let mut drafts = writer.drafts;
    drafts.truncate(target);
    drafts.sort_by_key(|d| d.event.event_time);
    drafts
}

/// How often a story happens at each kind of business, relative to others.
fn story_weight(source: Source) -> f64 {
    match source {
        Source::Shop(_) => 3.0,
        Source::Games => 4.0,
        Source::App(_) => 2.0,
        // A trip involves all travel businesses at once; split its weight.
        s if s.is_travel() => 1.0,
        _ => 1.0,
    }
}
