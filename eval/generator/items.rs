//! What generated events are about: the businesses ([`Source`]) and the
//! items ([`ItemRef`]) of the invented world, and their ids and item keys.
//!
//! Owns naming only: an item key is `"{source_id}/{item id}"`, shared by
//! every event about the same thing (a product viewed five times, a game
//! played for weeks, one booking), which is the level queries are labelled
//! at. It draws nothing at random and builds no events.

use context_engine::domain::ActivityEvent;

use super::catalog::{AIRLINE, APPS, CITIES, GAMES, GAME_STORE, HOTELS, SERVICES, SHOPS, TOURS};

/// A business a person's events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    Shop(usize),
    Games,
    App(usize),
    Airline,
    Hotels,
    Tours,
    Service(usize),
}

impl Source {
    pub fn all() -> Vec<Source> {
        let mut all: Vec<Source> = (0..SHOPS.len()).map(Source::Shop).collect();
        all.push(Source::Games);
        all.extend((0..APPS.len()).map(Source::App));
        all.extend([Source::Airline, Source::Hotels, Source::Tours]);
        all.extend((0..SERVICES.len()).map(Source::Service));
        all
    }

    /// (source_id, display name, web domain)
    pub fn info(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Shop(i) => (SHOPS[i].source_id, SHOPS[i].name, SHOPS[i].domain),
            Self::Games => GAME_STORE,
            Self::App(i) => (APPS[i].source_id, APPS[i].name, ""),
            Self::Airline => AIRLINE,
            Self::Hotels => HOTELS,
            Self::Tours => TOURS,
            Self::Service(i) => (SERVICES[i].source_id, SERVICES[i].name, SERVICES[i].domain),
        }
    }

    pub fn id(self) -> &'static str {
        self.info().0
    }

    pub fn name(self) -> &'static str {
        self.info().1
    }

    pub fn is_travel(self) -> bool {
        matches!(self, Self::Airline | Self::Hotels | Self::Tours)
    }
}

/// What an event is about. Repeated events about one thing share an item
/// (and so an item key); a booking is one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRef {
    Product {
        shop: usize,
        product: usize,
    },
    ShopSearch {
        shop: usize,
        category: usize,
    },
    Account {
        source: Source,
    },
    Game {
        game: usize,
    },
    App {
        app: usize,
    },
    Course {
        app: usize,
        course: usize,
    },
    /// `plan` indexes the service's plans; an app has one plan (0).
    Plan {
        source: Source,
        plan: usize,
    },
    Flight {
        city: usize,
        booking: u32,
    },
    Hotel {
        city: usize,
        hotel: usize,
    },
    Tour {
        city: usize,
    },
    FlightSearch {
        city: usize,
    },
}

impl ItemRef {
    /// `"{source_id}/{item id}"`, unique within one person's data.
    pub fn key(self, user_id: &str) -> String {
        match self {
            Self::Product { shop, product } => {
                format!("{}/{}", SHOPS[shop].source_id, SHOPS[shop].products[product].id)
            }
            Self::ShopSearch { shop, category } => {
                format!("{}/search-{}", SHOPS[shop].source_id, SHOPS[shop].categories[category].key)
            }
            Self::Account { source } => format!("{}/account", source.id()),
            Self::Game { game } => format!("{}/{}", GAME_STORE.0, GAMES[game].id),
            Self::App { app } => format!("{}/app", APPS[app].source_id),
            Self::Course { app, course } => format!("{}/{}", APPS[app].source_id, APPS[app].courses[course].id),
            Self::Plan { source: Source::App(app), .. } => format!("{}/{}", APPS[app].source_id, APPS[app].plan.id),
            Self::Plan { source, plan } => match source {
                Source::Service(s) => format!("{}/{}", SERVICES[s].source_id, SERVICES[s].plans[plan].id),
                other => format!("{}/plan-{plan}", other.id()),
            },
            Self::Flight { booking, .. } => format!("{}/{user_id}-booking-{booking}", AIRLINE.0),
            Self::Hotel { city, hotel } => format!("{}/{}", HOTELS.0, CITIES[city].hotels[hotel].0),
            Self::Tour { city } => format!("{}/{}", TOURS.0, CITIES[city].tour.0),
            Self::FlightSearch { city } => format!("{}/search-{}", AIRLINE.0, CITIES[city].slug),
        }
    }
}

/// One generated event and what it is about.
#[derive(Debug, Clone)]
pub struct Draft {
    pub event: ActivityEvent,
    pub item: ItemRef,
    pub item_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_keys_are_source_prefixed_ids() {
        for source in Source::all() {
            let key = ItemRef::Account { source }.key("u1");
            assert!(key.starts_with(&format!("{}/", source.id())), "{key}");
            assert!(key.bytes().all(|b| b.is_ascii_graphic()), "{key}");
        }
        assert_eq!(ItemRef::Product { shop: 1, product: 0 }.key("u1"), "kestrel-pine/kr2-gtx");
        assert_eq!(ItemRef::Flight { city: 0, booking: 3 }.key("u1"), "skylark-air/u1-booking-3");
        assert_eq!(ItemRef::Plan { source: Source::App(1), plan: 0 }.key("u1"), "tunewell/tunewell-family");
    }

    #[test]
    fn catalog_ids_are_unique_within_a_source() {
        for shop in &SHOPS {
            let mut ids: Vec<&str> = shop.products.iter().map(|p| p.id).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), shop.products.len(), "{}", shop.source_id);
            assert!(shop.products.iter().all(|p| p.category < shop.categories.len()));
        }
        let mut sources: Vec<&str> = Source::all().iter().map(|s| s.id()).collect();
        sources.sort_unstable();
        sources.dedup();
        assert_eq!(sources.len(), Source::all().len());
    }
}
