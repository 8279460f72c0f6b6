//! Typed event → one canonical sentence, by a template per event family.
//!
//! No LLM and no free-text-only input on the write path: the sentence is built
//! from structured fields, so the same event always yields the same text (and
//! the same vector). Free-text fields are untrusted: they are cleaned
//! (control characters dropped, whitespace collapsed, length capped) before
//! they reach a template. Escaping for prompts is `render`'s job, not this one.

use std::fmt::Write as _;

use crate::domain::{ActivityEvent, EventFamily};

/// Longest piece of free text a template will quote, in characters.
const MAX_FIELD_CHARS: usize = 120;
/// Most item names listed from `contents` before "and N more".
const MAX_LISTED_ITEMS: usize = 3;

/// The canonical sentence for a (validated) event.
pub fn verbalize(event: &ActivityEvent) -> String {
    let source = clean(event.source_display());
    let data = &event.custom_data;
    let item = item_phrase(event);
    let mut s = String::new();
    match event.family() {
        EventFamily::Purchase => {
            s.push_str("Purchased ");
            match quantity(event) {
                Some(n) if n > 1 => {
                    let _ = write!(s, "{n} × ");
                }
                _ => {}
            }
            s.push_str(item.as_deref().unwrap_or("an order"));
            category(&mut s, event);
            money(&mut s, event, " for ");
            let _ = write!(s, " at {source}");
        }
        EventFamily::Cart => {
            let item = item.as_deref().unwrap_or("items");
            let _ = match event.event_name.as_str() {
                "InitiateCheckout" => write!(s, "Started checkout for {item}"),
                "AddPaymentInfo" => write!(s, "Added payment details for {item}"),
                "AddToWishlist" => write!(s, "Added {item} to wishlist"),
                _ => write!(s, "Added {item} to cart"),
            };
            category(&mut s, event);
            money(&mut s, event, " worth ");
            let _ = write!(s, " at {source}");
        }
        EventFamily::View => {
            let _ = write!(s, "Viewed {}", item.as_deref().unwrap_or("a page"));
            category(&mut s, event);
            let _ = write!(s, " at {source}");
        }
        EventFamily::Search => {
            let query = clean(&data.search_string);
            if query.is_empty() {
                let _ = write!(s, "Searched at {source}");
            } else {
                let _ = write!(s, "Searched for '{query}' at {source}");
            }
            category(&mut s, event);
        }
        EventFamily::Signup => {
            let what = item.as_deref();
            let _ = match (event.event_name.as_str(), what) {
                ("Subscribe", Some(w)) => write!(s, "Subscribed to {w} at {source}"),
                ("Subscribe", None) => write!(s, "Subscribed at {source}"),
                ("StartTrial", Some(w)) => write!(s, "Started a free trial of {w} at {source}"),
                ("StartTrial", None) => write!(s, "Started a free trial at {source}"),
                ("Lead" | "Contact", Some(w)) => write!(s, "Asked {source} about {w}"),
                ("Lead" | "Contact", None) => write!(s, "Contacted {source}"),
                ("Schedule", Some(w)) => write!(s, "Booked an appointment for {w} at {source}"),
                ("Schedule", None) => write!(s, "Booked an appointment at {source}"),
                ("SubmitApplication", Some(w)) => write!(s, "Applied for {w} at {source}"),
                ("SubmitApplication", None) => write!(s, "Submitted an application at {source}"),
                (_, Some(w)) => write!(s, "Signed up for {w} at {source}"),
                (_, None) => write!(s, "Created an account at {source}"),
            };
            money(&mut s, event, " for ");
        }
        EventFamily::AppGame => {
            let name = item.as_deref().unwrap_or(&source);
            let _ = match event.event_name.as_str() {
                "GamePlayed" => write!(s, "Played {name}"),
                "AppInstall" => write!(s, "Installed the {name} app"),
                "AppOpen" => write!(s, "Opened the {name} app"),
                "LevelAchieved" => write!(s, "Reached a new level in {name}"),
                _ => write!(s, "Unlocked an achievement in {name}"),
            };
            if let Some(minutes) = prop(event, "duration_minutes") {
                let _ = write!(s, " for {minutes} minutes");
            }
            if let Some(level) = prop(event, "level") {
                let _ = write!(s, " at level {level}");
            }
            if let Some(achievement) = prop(event, "achievement") {
                let _ = write!(s, " ({achievement})");
            }
            if name != source {
                let _ = write!(s, " on {source}");
            }
        }
        EventFamily::Travel => {
            let kind = match event.event_name.as_str() {
                "FlightBooked" => "a flight",
                "HotelBooked" => "a hotel stay",
                _ => "a trip",
            };
            let _ = write!(s, "Booked {kind}");
            if let Some(origin) = prop(event, "origin") {
                let _ = write!(s, " from {origin}");
            }
            if let Some(destination) = prop(event, "destination") {
                let word = if event.event_name == "HotelBooked" { "in" } else { "to" };
                let _ = write!(s, " {word} {destination}");
            }
            if let Some(date) = prop(event, "travel_date") {
                let _ = write!(s, " on {date}");
            }
            if let Some(item) = &item {
                let _ = write!(s, " ({item})");
            }
            money(&mut s, event, " for ");
            let _ = write!(s, " with {source}");
        }
        EventFamily::Custom => {
            s.push_str(&humanize(&event.event_name));
            if let Some(item) = &item {
                let _ = write!(s, ": {item}");
            }
            category(&mut s, event);
            money(&mut s, event, ", ");
            let _ = write!(s, " at {source}");
        }
    }
    let status = clean(&data.status);
    if !status.is_empty() {
        let _ = write!(s, " (status: {status})");
    }
    s
}

/// What the event is about: content_name, else the contents' titles, else
/// their ids.
fn item_phrase(event: &ActivityEvent) -> Option<String> {
    let data = &event.custom_data;
    let name = clean(&data.content_name);
    if !name.is_empty() {
        return Some(name);
    }
    let titles: Vec<String> = data.contents.iter().map(|c| clean(&c.title)).filter(|t| !t.is_empty()).collect();
    let listed = if titles.is_empty() {
        data.content_ids.iter().map(|id| clean(id)).filter(|t| !t.is_empty()).collect()
    } else {
        titles
    };
    if listed.is_empty() {
        return None;
    }
    let mut phrase = listed.iter().take(MAX_LISTED_ITEMS).cloned().collect::<Vec<_>>().join(", ");
    if listed.len() > MAX_LISTED_ITEMS {
        let _ = write!(phrase, " and {} more", listed.len() - MAX_LISTED_ITEMS);
    }
    Some(phrase)
}

/// Item count: `num_items`, else the sum of line-item quantities.
fn quantity(event: &ActivityEvent) -> Option<u64> {
    let data = &event.custom_data;
    data.num_items.map(u64::from).or_else(|| {
        let total: u64 = data.contents.iter().map(|c| u64::from(c.quantity)).sum();
        (total > 0).then_some(total)
    })
}

fn category(s: &mut String, event: &ActivityEvent) {
    let category = clean(&event.custom_data.content_category);
    if !category.is_empty() {
        let _ = write!(s, " ({category})");
    }
}

fn money(s: &mut String, event: &ActivityEvent, lead: &str) {
    let data = &event.custom_data;
    if let Some(value) = data.value {
        // `+ 0.0` turns a negative zero into zero: "-0.00 EUR" is no amount.
        let value = value + 0.0;
        let _ = write!(s, "{lead}{value:.2} {}", clean(&data.currency));
    }
}

fn prop(event: &ActivityEvent, key: &str) -> Option<String> {
    event.custom_data.properties.get(key).map(|v| clean(v)).filter(|v| !v.is_empty())
}

/// `LoyaltyPointsRedeemed` → `Loyalty points redeemed`.
fn humanize(event_name: &str) -> String {
    let mut out = String::with_capacity(event_name.len() + 4);
    for (i, c) in event_name.chars().enumerate() {
        if c == '_' {
            out.push(' ');
        } else if c.is_ascii_uppercase() && i > 0 && !out.ends_with(' ') {
            out.push(' ');
            out.push(c.to_ascii_lowercase());
        } else if i > 0 {
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c.to_ascii_uppercase());
        }
    }
    out
}

/// Untrusted free text → one tidy line: control and invisible formatting
/// characters removed, whitespace collapsed, capped at `MAX_FIELD_CHARS`.
pub fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(MAX_FIELD_CHARS * 4));
    let mut chars = 0;
    let mut pending_space = false;
    for c in raw.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if c.is_control() || is_invisible(c) {
            continue;
        }
        if chars >= MAX_FIELD_CHARS {
            out.push('…');
            break;
        }
        if pending_space {
            out.push(' ');
            chars += 1;
            pending_space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

/// Zero-width and bidi-control characters: invisible in a prompt, yet able to
/// hide or reorder text.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Content, CustomData};

    fn event(name: &str, data: CustomData) -> ActivityEvent {
        ActivityEvent {
            event_id: "e".into(),
            user_id: "u".into(),
            source_id: "acme".into(),
            source_name: "Acme Outdoors".into(),
            event_name: name.into(),
            event_time: 1_790_000_000,
            action_source: "website".into(),
            custom_data: data,
            ..Default::default()
        }
    }

    fn props(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn purchase() {
        let e = event(
            "Purchase",
            CustomData {
                content_name: "Trail Runner hiking boots".into(),
                content_category: "Footwear".into(),
                num_items: Some(2),
                value: Some(129.99),
                currency: "USD".into(),
                ..Default::default()
            },
        );
        assert_eq!(verbalize(&e), "Purchased 2 × Trail Runner hiking boots (Footwear) for 129.99 USD at Acme Outdoors");
    }

    #[test]
    fn purchase_from_contents_lists_titles_and_sums_quantities() {
        let contents = (1..=5)
            .map(|i| Content { id: format!("sku{i}"), quantity: 1, title: format!("Item {i}"), ..Default::default() })
            .collect();
        let e = event("Purchase", CustomData { contents, ..Default::default() });
        assert_eq!(verbalize(&e), "Purchased 5 × Item 1, Item 2, Item 3 and 2 more at Acme Outdoors");
    }

    #[test]
    fn cart_and_checkout() {
        let data = CustomData { content_name: "French press".into(), ..Default::default() };
        assert_eq!(verbalize(&event("AddToCart", data.clone())), "Added French press to cart at Acme Outdoors");
        assert_eq!(
            verbalize(&event("InitiateCheckout", data.clone())),
            "Started checkout for French press at Acme Outdoors"
        );
        assert_eq!(verbalize(&event("AddToWishlist", data)), "Added French press to wishlist at Acme Outdoors");
    }

    #[test]
    fn view() {
        let data = CustomData {
            content_name: "65-inch OLED television".into(),
            content_category: "TV".into(),
            ..Default::default()
        };
        assert_eq!(verbalize(&event("ViewContent", data)), "Viewed 65-inch OLED television (TV) at Acme Outdoors");
    }

    #[test]
    fn search() {
        let data = CustomData { search_string: "gluten  free\npasta".into(), ..Default::default() };
        assert_eq!(verbalize(&event("Search", data)), "Searched for 'gluten free pasta' at Acme Outdoors");
    }

    #[test]
    fn registration_subscription_trial() {
        assert_eq!(
            verbalize(&event("CompleteRegistration", CustomData::default())),
            "Created an account at Acme Outdoors"
        );
        let data = CustomData {
            content_name: "Premium plan".into(),
            value: Some(9.99),
            currency: "EUR".into(),
            ..Default::default()
        };
        assert_eq!(
            verbalize(&event("Subscribe", data.clone())),
            "Subscribed to Premium plan at Acme Outdoors for 9.99 EUR"
        );
        assert_eq!(
            verbalize(&event("StartTrial", data)),
            "Started a free trial of Premium plan at Acme Outdoors for 9.99 EUR"
        );
    }

    #[test]
    fn app_and_game() {
        let mut e = event(
            "GamePlayed",
            CustomData {
                content_name: "Galaxy Raiders".into(),
                properties: props(&[("duration_minutes", "45"), ("level", "12")]),
                ..Default::default()
            },
        );
        e.source_name = "Nova Games".into();
        assert_eq!(verbalize(&e), "Played Galaxy Raiders for 45 minutes at level 12 on Nova Games");
        let mut e = event("AppInstall", CustomData::default());
        e.source_name = "FitTrack".into();
        assert_eq!(verbalize(&e), "Installed the FitTrack app");
    }

    #[test]
    fn travel() {
        let e = event(
            "FlightBooked",
            CustomData {
                value: Some(240.0),
                currency: "EUR".into(),
                properties: props(&[("origin", "Lisbon"), ("destination", "Berlin"), ("travel_date", "2026-03-03")]),
                ..Default::default()
            },
        );
        assert_eq!(
            verbalize(&e),
            "Booked a flight from Lisbon to Berlin on 2026-03-03 for 240.00 EUR with Acme Outdoors"
        );
    }

    #[test]
    fn custom_event_is_humanized() {
        let data = CustomData { content_name: "Gold tier".into(), ..Default::default() };
        assert_eq!(
            verbalize(&event("LoyaltyPointsRedeemed", data)),
            "Loyalty points redeemed: Gold tier at Acme Outdoors"
        );
    }

    #[test]
    fn negative_zero_is_zero() {
        let data =
            CustomData { content_name: "Tent".into(), value: Some(-0.0), currency: "EUR".into(), ..Default::default() };
        assert_eq!(verbalize(&event("Purchase", data)), "Purchased Tent for 0.00 EUR at Acme Outdoors");
    }

    #[test]
    fn status_is_appended() {
        let data = CustomData { content_name: "Tent".into(), status: "cancelled".into(), ..Default::default() };
        assert_eq!(verbalize(&event("Purchase", data)), "Purchased Tent at Acme Outdoors (status: cancelled)");
    }

    #[test]
    fn clean_strips_invisible_and_caps_length() {
        assert_eq!(clean("  a\u{200B}b\u{202E}c\u{7}  d "), "abc d");
        let long = "x".repeat(500);
        assert_eq!(clean(&long).chars().count(), MAX_FIELD_CHARS + 1);
    }

    #[test]
    fn deterministic() {
        let e = event("Purchase", CustomData { content_name: "Tent".into(), ..Default::default() });
        assert_eq!(verbalize(&e), verbalize(&e.clone()));
    }
}
